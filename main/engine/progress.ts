// Progress of a generation with an ETA, one event per network step of each diffusion stage.
import type { ProgressEvent, Stage } from './api.ts';

const now = (): number => performance.now();

/**
 * Progress with an ETA: remaining calls × measured time per call for stages already seen; stages not yet
 * run are estimated from their FLOP counts at the throughput measured so far.
 */
export class ProgressMeter {
  private last = now();
  private readonly seen = new Map<Stage, { calls: number; ms: number; flops: number }>();
  constructor(
    /** Calls and FLOPs per call of each diffusion stage in this job. */
    private readonly plan: { stage: Stage; calls: number; flops: number }[],
    private readonly onProgress?: (event: ProgressEvent) => void,
    private readonly t0 = now(),
  ) {}
  tick(stage: Stage, step: number, total: number, preview?: Uint8Array): void {
    const t = now();
    const s = this.seen.get(stage) ?? { calls: 0, ms: 0, flops: 0 };
    s.calls++;
    s.ms += t - this.last;
    this.last = t;
    this.seen.set(stage, s);
    if (!this.onProgress) return;
    let msSeen = 0;
    let flopsSeen = 0;
    for (const [st, v] of this.seen) {
      const p = this.plan.find((x) => x.stage === st);
      msSeen += v.ms;
      flopsSeen += v.calls * (p?.flops ?? 0);
    }
    const msPerFlop = flopsSeen > 0 ? msSeen / flopsSeen : 0;
    let etaMs = 0;
    for (const p of this.plan) {
      const v = this.seen.get(p.stage);
      const left = p.calls - (v?.calls ?? 0);
      if (left <= 0) continue;
      etaMs += left * (v ? v.ms / v.calls : p.flops * msPerFlop);
    }
    const event: ProgressEvent = {
      stage,
      step,
      total,
      elapsedMs: Math.round(t - this.t0),
      etaMs: Math.round(etaMs),
    };
    if (preview) event.preview = preview;
    this.onProgress(event);
  }
}

/** Cost of one call of `net` on `rows` rows (a floor of 1 MFLOP, so tiny networks still count). */
export const costOf = (net: { spec: { flops: number } } | undefined, rows: number): number =>
  net ? Math.max(net.spec.flops, 1e6) * rows : 0;
