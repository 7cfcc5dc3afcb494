/**
 * What a tensor is, from its Hugging Face name: the module kind that reports group by
 * (q, k, v, o, gate, up, down, embed, head, norms, other), and the role a projection
 * (abliteration) gives it — writer to the residual stream or reader from it. Names, not
 * shapes, decide: a square o_proj is still a writer.
 */

export const MODULE_KINDS = ['q', 'k', 'v', 'o', 'gate', 'up', 'down', 'embed', 'head', 'norms', 'other'] as const;
export type ModuleKind = (typeof MODULE_KINDS)[number];

const KIND_PATTERNS: readonly (readonly [ModuleKind, RegExp])[] = [
  ['embed', /(^|\.)(embed_tokens|wte|word_embeddings|embed_in)\./],
  ['head', /(^|\.)(lm_head|embed_out)\./],
  ['norms', /(norm|ln_\d|ln_f|layernorm)[^.]*\.(weight|bias)$/i],
  ['q', /\.q_proj\./],
  ['k', /\.k_proj\./],
  ['v', /\.v_proj\./],
  ['o', /\.(o_proj|out_proj|dense)\.|\.attn\.c_proj\./],
  // Mixtral-style experts: w1 = gate, w3 = up, w2 = down
  ['gate', /\.(gate_proj|w1)\./],
  ['up', /\.(up_proj|w3|fc1|c_fc)\./],
  ['down', /\.(down_proj|w2|fc2)\.|\.mlp\.c_proj\./],
];

export function moduleKindOf(name: string): ModuleKind {
  for (const [kind, re] of KIND_PATTERNS) if (re.test(name)) return kind;
  return 'other';
}

export type ProjectionRole = 'writer' | 'reader';

/**
 * The projection role of a weight: writers add to the residual stream (attention output,
 * MLP down projections, MoE expert down projections); readers read it (token embeddings —
 * a lookup whose rows enter the stream —, the LM head, and q/k/v/gate/up). undefined for
 * everything else (norms, biases, routers).
 */
export function projectionRoleOf(name: string): ProjectionRole | undefined {
  if (!name.endsWith('.weight')) return undefined;
  const kind = moduleKindOf(name);
  if (kind === 'o' || kind === 'down') return 'writer';
  if (kind === 'embed' || kind === 'head' || kind === 'q' || kind === 'k' || kind === 'v' || kind === 'gate' || kind === 'up') return 'reader';
  return undefined;
}
