import cliProgress from 'cli-progress';
import type { EpochInfo, StepInfo, TrainHooks } from '../runtime/trainer.ts';

const pct = (x: number) => `${(100 * x).toFixed(2)}%`;

/**
 * On a terminal, a bar per epoch with loss, running accuracy, images/s and ETA. Elsewhere (logs,
 * CI) the textbook's line every 100 batches: `Train Batch: 100, Loss: 0.2345`.
 */
export function progressHooks(epochs: number, out: NodeJS.WriteStream = process.stderr): TrainHooks & { stop(): void } {
  const tty = out.isTTY === true;
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
          stream: out,
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
      if (bar) {
        bar.update(s.batch, { loss: s.loss.toFixed(4), acc: pct(s.runningAccuracy), ips: Math.round(s.imagesPerSec).toLocaleString('en-US') });
      } else if ((s.batch - 1) % 100 === 0) {
        out.write(`Train Batch: ${s.batch - 1}, Loss: ${s.loss.toFixed(4)}\n`);
      }
    },
    onEpochEnd(e: EpochInfo) {
      stop();
      out.write(`Epoch ${e.epoch + 1}: train loss ${e.trainLoss.toFixed(4)}, test loss ${e.testLoss.toFixed(4)}, test accuracy ${pct(e.testAccuracy)} (${e.seconds.toFixed(1)} s)\n`);
    },
    stop,
  };
}
