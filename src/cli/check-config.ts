import { loadOrReport } from './common.js';

/** `check-config --config FILE`: exit 0 when valid, 1 with every problem and its YAML path. */
export function checkConfigCommand(file: string | undefined): number {
  const config = loadOrReport(file);
  if (!config) return 1;
  const r = config.rules;
  process.stdout.write(
    `${file}: OK\n` +
      `  rules from ${config.sources.rules}: ${r.categories.length} categories (${r.categories.map((c) => c.name).join(', ')}), fallback ${r.fallback.name}\n` +
      `  GLPI ${config.glpi.url}, store ${config.data_dir}/${config.store.file}, listen ${config.listen}${config.webhook.path}\n`,
  );
  return 0;
}
