/**
 * Errors of the OCI distribution API. `OciError` carries the spec's code and renders the error body
 * `{"errors":[{"code","message","detail"}]}` with the status code distribution uses for that code.
 */

export const ociErrorStatus = {
  BLOB_UNKNOWN: 404,
  BLOB_UPLOAD_INVALID: 400,
  BLOB_UPLOAD_UNKNOWN: 404,
  DIGEST_INVALID: 400,
  MANIFEST_BLOB_UNKNOWN: 400,
  MANIFEST_INVALID: 400,
  MANIFEST_UNKNOWN: 404,
  NAME_INVALID: 400,
  NAME_UNKNOWN: 404,
  SIZE_INVALID: 400,
  TAG_INVALID: 400,
  UNAUTHORIZED: 401,
  DENIED: 403,
  UNSUPPORTED: 405,
  TOOMANYREQUESTS: 429,
  RANGE_INVALID: 416,
  PAYLOAD_TOO_LARGE: 413,
  METHOD_UNKNOWN: 405,
  UNAVAILABLE: 503,
  UNKNOWN: 500,
} as const;

export type OciErrorCode = keyof typeof ociErrorStatus;

export class OciError extends Error {
  readonly code: OciErrorCode;
  readonly detail: unknown;
  readonly status: number;

  constructor(code: OciErrorCode, message: string, detail?: unknown, status?: number) {
    super(message);
    this.name = 'OciError';
    this.code = code;
    this.detail = detail;
    this.status = status ?? ociErrorStatus[code];
  }

  body(): { errors: { code: string; message: string; detail?: unknown }[] } {
    const entry: { code: string; message: string; detail?: unknown } = {
      code: this.code,
      message: this.message,
    };
    if (this.detail !== undefined) entry.detail = this.detail;
    return { errors: [entry] };
  }
}

export function isOciError(value: unknown): value is OciError {
  return value instanceof OciError;
}
