/**
 * What a failure without an HTTP answer was: a TLS failure and which (a rejected certificate, a host
 * answering plain HTTP, another handshake failure), whether it is worth another attempt, and the words
 * and hint it is reported with. Errors from undici, node:net and the wire alike.
 */

const retryableCodes = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
]);

/** True for a network error code worth another attempt (a reset, a refusal, a timeout). */
export function isRetryableCode(code: string): boolean {
  return retryableCodes.has(code);
}

/** Certificate verification failures (OpenSSL's X509 codes, and Node's own for a wrong name), with why. */
const certificateProblems: Record<string, string> = {
  DEPTH_ZERO_SELF_SIGNED_CERT: 'self-signed',
  SELF_SIGNED_CERT_IN_CHAIN: 'issued by a self-signed CA this machine does not trust',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'issued by a CA this machine does not know',
  UNABLE_TO_GET_ISSUER_CERT: 'issued by a CA this machine does not know',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'issued by a CA this machine does not know',
  CERT_UNTRUSTED: 'issued by a CA this machine does not trust',
  INVALID_CA: 'issued by an invalid CA',
  CERT_HAS_EXPIRED: 'expired',
  CERT_NOT_YET_VALID: 'not valid yet',
  ERROR_IN_CERT_NOT_BEFORE_FIELD: 'unreadable validity dates',
  ERROR_IN_CERT_NOT_AFTER_FIELD: 'unreadable validity dates',
  ERR_TLS_CERT_ALTNAME_INVALID: 'issued for another name',
  HOSTNAME_MISMATCH: 'issued for another name',
  CERT_REVOKED: 'revoked',
  CERT_REJECTED: 'rejected',
  CERT_SIGNATURE_FAILURE: 'a bad signature',
  UNABLE_TO_DECRYPT_CERT_SIGNATURE: 'a bad signature',
  CERT_CHAIN_TOO_LONG: 'a chain that is too long',
  PATH_LENGTH_EXCEEDED: 'a chain that is too long',
  INVALID_PURPOSE: 'not for TLS servers',
};

/** OpenSSL's codes for a TLS handshake answered in plain HTTP (the answer's bytes are no TLS record). */
const plainHttpAnswerCodes = new Set(['ERR_SSL_WRONG_VERSION_NUMBER', 'ERR_SSL_PACKET_LENGTH_TOO_LONG']);

/** How skipping verification is asked for, named in hints. */
const SKIP_VERIFY =
  '--src-tls-verify=false / --dest-tls-verify=false (copy), --dest-tls-verify=false (sync), ' +
  '--tls-verify=false (inspect, ratelimit), or tls-verify: false in the mirror file';

/**
 * What a TLS failure was, from its code (and, for older Node's `EPROTO`, OpenSSL's reason): a rejected
 * certificate, a host answering plain HTTP, another handshake failure, or undefined for no TLS failure.
 */
export function tlsFailure(
  error: unknown,
): { kind: 'certificate' | 'plain-http' | 'handshake'; code: string; reason: string } | undefined {
  for (let current = error, depth = 0; current && depth < 5; depth++) {
    const { code, reason, message } = current as { code?: unknown; reason?: unknown; message?: unknown };
    if (typeof code === 'string') {
      const said = typeof reason === 'string' ? reason : typeof message === 'string' ? message : '';
      const problem = certificateProblems[code];
      if (problem !== undefined) return { kind: 'certificate', code, reason: problem };
      if (plainHttpAnswerCodes.has(code) || (code === 'EPROTO' && /wrong version number/i.test(said))) {
        return { kind: 'plain-http', code, reason: 'wrong version number' };
      }
      if (/^ERR_SSL_/.test(code) || code === 'EPROTO') {
        const short = /^[a-z0-9 ,'-]{1,80}$/i.test(said) ? said : code.replace(/^ERR_SSL_/, '').toLowerCase();
        return { kind: 'handshake', code, reason: short.replaceAll('_', ' ') };
      }
    }
    const inner = (current as { errors?: unknown }).errors;
    current = Array.isArray(inner) && inner.length > 0 ? inner[0] : (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/** True when an error (from undici or node:net) is worth another attempt. */
export function isRetryableNetworkError(error: unknown): boolean {
  const code = errorCode(error);
  return code !== undefined && retryableCodes.has(code);
}

/** The code of a network error: its TLS failure's, or the first system or undici code among its causes. */
export function errorCode(error: unknown): string | undefined {
  const tls = tlsFailure(error);
  if (tls) return tls.code;
  for (let current = error, depth = 0; current && depth < 5; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && (retryableCodes.has(code) || /^E[A-Z]+$|^UND_ERR/.test(code))) {
      return code;
    }
    const inner = (current as { errors?: unknown }).errors;
    current = Array.isArray(inner) && inner.length > 0 ? inner[0] : (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/** The reason for a failure without an answer, and a hint when the failure says what to do. */
export function describeNetworkError(
  error: unknown,
  code: string,
  host: string,
): { reason: string; hint?: string } {
  const tls = tlsFailure(error);
  if (tls?.kind === 'certificate') {
    const fix =
      tls.code === 'ERR_TLS_CERT_ALTNAME_INVALID' || tls.code === 'HOSTNAME_MISMATCH'
        ? `name the registry as its certificate does, or trust a certificate issued for ${host}`
        : tls.code === 'CERT_HAS_EXPIRED' || tls.code === 'CERT_NOT_YET_VALID'
          ? `check this machine's clock, or have the certificate of ${host} renewed`
          : 'trust its CA with NODE_EXTRA_CA_CERTS=FILE (PEM, in the environment pullsafe starts with)';
    return {
      reason: `the certificate of ${host} is not trusted: ${tls.reason} (${tls.code})`,
      hint: `${fix}; or, for a registry you control, skip verification with ${SKIP_VERIFY}`,
    };
  }
  if (tls?.kind === 'plain-http') {
    return {
      reason: `${host} answers plain HTTP, not HTTPS`,
      hint: `pass --plain-http ${host} (in a mirror file, tls-verify: false for it falls back to plain HTTP)`,
    };
  }
  if (tls) return { reason: `the TLS handshake with ${host} failed: ${tls.reason} (${tls.code})` };
  return { reason: describeCode(error, code) };
}

function describeCode(error: unknown, code: string): string {
  switch (code) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ECONNRESET':
    case 'UND_ERR_SOCKET':
      return 'connection reset';
    case 'UND_ERR_CONNECT_TIMEOUT':
      return 'timed out connecting';
    case 'UND_ERR_HEADERS_TIMEOUT':
      return 'timed out waiting for the response headers';
    case 'UND_ERR_BODY_TIMEOUT':
      return 'timed out waiting for the response body';
    case 'ENOTFOUND':
      return 'host not found (DNS)';
    case 'EAI_AGAIN':
      return 'DNS lookup failed temporarily';
    default:
      return `${code}: ${error instanceof Error ? error.message : String(error)}`;
  }
}
