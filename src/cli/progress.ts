import cliProgress from 'cli-progress';
import type { EpochInfo, StepInfo, TrainHooks } from '../runtime/trainer.ts';

const pct = (x: number) => `${(100 * x).toFixed(2)}%`;

/**
 * Results on stdout, progress on stderr, so `kiln train ... > log` keeps the results: the
 * textbook's line every 100 batches (`Train Batch: 100, Loss: 0.2345`) and a line per epoch go
 * to `lines`; on a terminal, a bar per epoch (loss, running accuracy, images/s, ETA) goes to
 * `bar`, and then the batch lines are left out when both streams are that terminal.
 */
export function progressHooks(epochs: number, lines: NodeJS.WriteStream = process.stdout, barOut: NodeJS.WriteStream = process.stderr): TrainHooks & { stop(): void } {
  const tty = barOut.isTTY === true;
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
          format: `epoch ${epoch + 1}/${epochs} {bar} {value}/{total} | loss {loss} | acc {acc} | {ips} img/s | ETA {eta_formatted}`,
          barCompleteChar: '█',
          barIncompleteChar: '░',
          hideCursor: true,
          etaBuffer: 50,
          fps: 10,
        },
        cliProgress.Presets.shades_classic,
      );
      bar.start(batches, first, { loss: '-', acc: '-', ips: '-' });
    },
    onStep(s: StepInfo) {
      bar?.update(s.batch, { loss: s.loss.toFixed(4), acc: pct(s.runningAccuracy), ips: Math.round(s.imagesPerSec).toLocaleString('en-US') });
      if (batchLines && (s.batch - 1) % 100 === 0) lines.write(`Train Batch: ${s.batch - 1}, Loss: ${s.loss.toFixed(4)}\n`);
    },
    onEpochEnd(e: EpochInfo) {
      stop();
      lines.write(`Epoch ${e.epoch + 1}: train loss ${e.trainLoss.toFixed(4)}, test loss ${e.testLoss.toFixed(4)}, test accuracy ${pct(e.testAccuracy)} (${e.seconds.toFixed(1)} s)\n`);
    },
    stop,
  };
}
