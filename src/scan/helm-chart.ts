/**
 * What a Helm chart's templates read, for `rewrite`: whether a values file's image map is turned into an
 * image with a registry key (`.Values.image.registry`, or a helper such as Bitnami's `common.images.image`
 * that reads `.registry` of the map it is given) or with the repository alone (the `helm create` layout:
 * `"{{ .Values.image.repository }}:{{ .Values.image.tag }}"`).
 *
 * The chart is the nearest folder above the values file (three levels at most) that holds a `Chart.yaml`;
 * its templates and the templates of the charts it vendors (`charts/*`) are read, a bounded amount.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** `yes`: the chart reads a registry for the map; `no`: only its repository; `unknown`: no chart, or no use. */
export type RegistryUse = 'yes' | 'no' | 'unknown';

interface ChartText {
  templates: string;
  chartYaml: string;
}

const maxTemplateBytes = 16 * 1024 * 1024;
const maxTemplateFiles = 4000;

const charts = new Map<string, ChartText | undefined>();

function chartFolder(valuesFile: string): string | undefined {
  let folder = dirname(valuesFile);
  for (let level = 0; level < 4; level++) {
    if (existsSync(join(folder, 'Chart.yaml'))) return folder;
    const parent = dirname(folder);
    if (parent === folder) return undefined;
    folder = parent;
  }
  return undefined;
}

function readTemplates(folder: string): ChartText {
  const parts: string[] = [];
  let bytes = 0;
  let files = 0;
  const visit = (dir: string, depth: number): void => {
    if (depth > 6 || files >= maxTemplateFiles || bytes >= maxTemplateBytes) return;
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) visit(path, depth + 1);
      else if (entry.isFile() && /\.(?:ya?ml|tpl|txt|json)$/i.test(entry.name)) {
        if (files >= maxTemplateFiles || bytes >= maxTemplateBytes) return;
        try {
          if (statSync(path).size > maxTemplateBytes - bytes) continue;
          const text = readFileSync(path, 'utf8');
          parts.push(text);
          bytes += text.length;
          files++;
        } catch {
          // unreadable: skipped
        }
      }
    }
  };
  visit(join(folder, 'templates'), 0);
  let vendored: string[] = [];
  try {
    vendored = readdirSync(join(folder, 'charts'));
  } catch {
    // no vendored charts
  }
  for (const name of vendored) visit(join(folder, 'charts', name, 'templates'), 1);
  let chartYaml = '';
  try {
    chartYaml = readFileSync(join(folder, 'Chart.yaml'), 'utf8');
  } catch {
    // checked to exist a moment ago; nothing to add
  }
  return { templates: parts.join('\n'), chartYaml };
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Whether the chart that reads `valuesFile` (a path on disk) builds the image of the map at `mapPath`
 * (`metrics.image`) with a registry.
 */
export function chartReadsRegistry(valuesFile: string, mapPath: string): RegistryUse {
  if (!/^[A-Za-z_][\w]*(?:\.[A-Za-z_][\w]*)*$/.test(mapPath)) return 'unknown';
  const folder = chartFolder(valuesFile);
  if (folder === undefined) return 'unknown';
  let chart = charts.get(folder);
  if (!charts.has(folder)) {
    chart = readTemplates(folder);
    charts.set(folder, chart);
  }
  if (!chart) return 'unknown';
  const reference = `.Values.${mapPath}`;
  const text = chart.templates;
  if (text.includes(`${reference}.registry`)) return 'yes';
  if (new RegExp(`${escape(reference)}\\.(?:repository|name|image)\\b`).test(text)) return 'no';
  if (new RegExp(`${escape(reference)}(?![\\w.])`).test(text)) {
    // The map is handed to a helper: it reads a registry when some template does (`.imageRoot.registry`),
    // or when the helper comes from Bitnami's common library chart, which is not vendored in the source.
    if (/\.registry\b/.test(text) || /^\s*-?\s*name:\s*common\s*$/m.test(chart.chartYaml)) return 'yes';
    return 'no';
  }
  return 'unknown';
}
