/**
 * The conv layers' filters. conv1: one 5x5 tile per filter (its single input channel). conv2 and later:
 * one canvas per layer, a row per input channel and a column per filter, each cell a 5x5 tile.
 * Weights are scaled symmetrically by the layer's largest |w|: blue negative, orange positive.
 */
import type { FilterBank } from '../network.ts';
import { el, maxOf, paintGrid, signed } from './paint.ts';

const GAP = 1; // canvas pixels between tiles in a grid

export class FiltersView {
  private readonly parts = new Map<string, { tiles: HTMLCanvasElement[]; caption: HTMLElement }>();
  private version = 0;

  constructor(private readonly container: HTMLElement) {}

  update(banks: FilterBank[]): void {
    let checksum = 0;
    for (const bank of banks) {
      const [size, , inChannels, filters] = bank.shape;
      const part = this.part(bank, inChannels === 1 ? filters : 1);
      const d = bank.data;
      const peak = maxOf(d, true);
      // kernel layout [kh, kw, in, out]
      const w = (kh: number, kw: number, i: number, o: number) => d[((kh * size + kw) * inChannels + i) * filters + o];
      if (inChannels === 1) {
        part.tiles.forEach((tile, o) => paintGrid(tile, size, size, (r, c) => w(r, c, 0, o), signed, peak));
      } else {
        const cell = size + GAP;
        paintGrid(
          part.tiles[0],
          inChannels * cell - GAP,
          filters * cell - GAP,
          (r, c) => {
            const i = Math.floor(r / cell),
              o = Math.floor(c / cell),
              kh = r % cell,
              kw = c % cell;
            return kh === size || kw === size ? 0 : w(kh, kw, i, o);
          },
          signed,
          peak,
        );
        part.tiles[0].style.aspectRatio = `${part.tiles[0].width} / ${part.tiles[0].height}`; // whatever the layer's shape
      }
      part.caption.textContent = `max |w| ${peak.toFixed(3)}`;
      for (let k = 0; k < d.length; k += 7) checksum += d[k];
    }
    this.version += 1;
    this.container.dataset.version = String(this.version);
    this.container.dataset.checksum = checksum.toFixed(6);
  }

  private part(bank: FilterBank, tiles: number): { tiles: HTMLCanvasElement[]; caption: HTMLElement } {
    let part = this.parts.get(bank.name);
    if (part) return part;
    const [size, , inChannels, filters] = bank.shape;
    const box = el('figure', `filter-bank ${inChannels === 1 ? 'first' : 'deep'}`);
    const head = el('figcaption');
    const title =
      inChannels === 1
        ? `${bank.name} · ${filters} filters of ${size}×${size}`
        : `${bank.name} · ${filters} filters of ${size}×${size}×${inChannels}: a column per filter, a row per ${bank.name === 'conv1' && inChannels === 3 ? 'colour (red, green, blue)' : 'input map'}`;
    const caption = el('span', 'caption', '');
    head.append(el('strong', '', title), caption);
    const grid = el('div', `tiles tiles-filters-${inChannels === 1 ? 'first' : 'deep'}`);
    const canvases = Array.from({ length: tiles }, (_, i) => {
      const c = el('canvas', 'tile');
      c.title = inChannels === 1 ? `${bank.name} filter ${i + 1}` : bank.name;
      grid.append(c);
      return c;
    });
    box.append(head, grid);
    this.container.append(box);
    part = { tiles: canvases, caption };
    this.parts.set(bank.name, part);
    return part;
  }
}
