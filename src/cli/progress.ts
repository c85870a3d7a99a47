import cliProgress from 'cli-progress';
import { bitsPerByte } from '../runtime/data/text.ts';
import type { EpochInfo, StepInfo, TrainHooks } from '../runtime/trainer.ts';

const pct = (x: number) => `${(100 * x).toFixed(2)}%`;

/** How a run's numbers read: images (accuracy, images/s) or text (bits per byte, tokens/s of windows of `context`). */
export type RunUnits = { kind: 'images' } | { kind: 'text'; context: number };

/**
 * Results on stdout, progress on stderr, so `kiln train ... > log` keeps the results: the
 * textbook's line every 100 batches (`Train Batch: 100, Loss: 0.2345`) and a line per epoch go
 * to `lines`; on a terminal, a bar per epoch (loss, running accuracy or, for text, the step's bits
 * per byte, images/s or tokens/s, ETA) goes to
 * `bar`, and then the batch lines are left out when both streams are that terminal.
 */
export function progressHooks(epochs: number, units: RunUnits, lines: NodeJS.WriteStream = process.stdout, barOut: NodeJS.WriteStream = process.stderr): TrainHooks & { stop(): void } {
  const tty = barOut.isTTY === true;
  const text = units.kind === 'text';
  const perSec = (imagesPerSec: number) => Math.round(units.kind === 'text' ? imagesPerSec * units.context : imagesPerSec).toLocaleString('en-US');
  const batchLines = !(tty && lines.isTTY === true);
  let bar: cliProgress.SingleBar | undefined;
  const stop = () => {
    bar?.stop();
    bar = undefined;
  };
  return {
    onEpochStart(epoch, batches, first) {
      if (!tty) return;
      bar = new cliProgress.SingleBar(
        {
          stream: barOut,
          format: `epoch ${epoch + 1}/${epochs} {bar} {value}/{total} | loss {loss} | ${text ? 'bpb' : 'acc'} {score} | {ips} ${text ? 'tok/s' : 'img/s'} | ETA {eta_formatted}`,
          barCompleteChar: '█',
          barIncompleteChar: '░',
          hideCursor: true,
          etaBuffer: 50,
          fps: 10,
        },
        cliProgress.Presets.shades_classic,
      );
      bar.start(batches, first, { loss: '-', score: '-', ips: '-' });
    },
    onStep(s: StepInfo) {
      bar?.update(s.batch, { loss: s.loss.toFixed(4), score: text ? bitsPerByte(s.loss).toFixed(3) : pct(s.runningAccuracy), ips: perSec(s.imagesPerSec) });
      if (batchLines && (s.batch - 1) % 100 === 0) lines.write(`Train Batch: ${s.batch - 1}, Loss: ${s.loss.toFixed(4)}\n`);
    },
    onEpochEnd(e: EpochInfo) {
      stop();
      const result = text ? `val loss ${e.testLoss.toFixed(4)}, ${bitsPerByte(e.testLoss).toFixed(4)} bits per byte` : `test loss ${e.testLoss.toFixed(4)}, test accuracy ${pct(e.testAccuracy)}`;
      lines.write(`Epoch ${e.epoch + 1}: train loss ${e.trainLoss.toFixed(4)}, ${result} (${e.seconds.toFixed(1)} s)\n`);
    },
    stop,
  };
}
