/** Capped exponential backoff with jitter; randomness is injected so simulations replay. */
export interface BackoffConfig {
  readonly baseMs: number;
  readonly maxMs: number;
}

export function backoffMs(cfg: BackoffConfig, attempt: number, random: () => number): number {
  const ceiling = Math.min(cfg.maxMs, cfg.baseMs * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling * (0.5 + random() / 2));
}
