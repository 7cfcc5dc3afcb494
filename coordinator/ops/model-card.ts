/**
 * mergekit-yaml's `--write-model-card`: a Hugging Face model card (README.md: front matter with
 * the models, then the method, the models merged and the recipe) and the recipe as
 * `mergekit_config.yml`, beside the merged weights, as mergekit writes them. The models are named
 * as the recipe names them, not as resolved on this machine.
 */
import { stringify } from 'yaml';

/** The models a validated recipe names, as written, the base first, each once. */
export function modelsAsWritten(raw: Readonly<Record<string, unknown>>): { base: string | undefined; models: string[] } {
  const base = typeof raw['base_model'] === 'string' ? raw['base_model'] : undefined;
  const named: string[] = [];
  const add = (entry: unknown): void => {
    const model = (entry as { model?: unknown } | null)?.model;
    if (typeof model === 'string' && !named.includes(model)) named.push(model);
  };
  for (const m of (raw['models'] as unknown[] | undefined) ?? []) add(m);
  for (const s of (raw['slices'] as { sources?: unknown[] }[] | undefined) ?? []) for (const x of s.sources ?? []) add(x);
  return { base, models: named.filter((m) => m !== base) };
}

/** README.md and mergekit_config.yml for a merge of `raw` (the recipe as parsed from YAML) into the directory `name`. */
export function modelCardFiles(raw: Readonly<Record<string, unknown>>, method: string, name: string): Record<string, string> {
  const { base, models } = modelsAsWritten(raw);
  const recipe = stringify(raw);
  const front = stringify({ base_model: base ? [base, ...models] : models, library_name: 'transformers', tags: ['merge', 'weightspace'] });
  const card = [
    `---\n${front}---`,
    `# ${name}`,
    'A merge of pre-trained language models, made with weightspace from a mergekit recipe.',
    '## Merge details',
    '### Method',
    `Merged with mergekit's \`${method}\` method${base ? `, with \`${base}\` as the base` : ''}.`,
    '### Models merged',
    models.map((m) => `* \`${m}\``).join('\n'),
    '### Configuration',
    "The recipe that produced this model (also in `mergekit_config.yml`; `weightspace.json` records it with the tool's version and every shard's sha256):",
    `\`\`\`yaml\n${recipe}\`\`\``,
  ].join('\n\n');
  return { 'README.md': `${card}\n`, 'mergekit_config.yml': recipe };
}
