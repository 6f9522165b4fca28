/**
 * Inside the network, left to right: the 28x28 input, every feature map of each conv block (after
 * pooling and activation), the hidden dense layers, and the logits. Each layer is scaled by its own largest value, so a
 * dark map is one that is quiet compared with its neighbours. Signed outputs (tanh, logits) use the
 * diverging map of the filters.
 */
import type { LayerInfo } from '../../../src/serve/schema.ts';
import type { LayerOutput, Look } from '../network.ts';
import { CellGrid, type CellPosition } from './cell-grid.ts';
import { el, gray, heat, maxOf, paintGrid, paintRgb, signed } from './paint.ts';

interface Stage {
  info: LayerInfo | null; // null: the input
  tiles: HTMLCanvasElement[];
  peak: HTMLElement;
}

export class LayersView {
  private readonly stages: Stage[] = [];
  private readonly grids: CellGrid[] = [];
  /** Announces the keyboard cursor's cell to screen readers. */
  private readonly live: HTMLElement;
  /** The last input's layer outputs, by name (the keyboard grid reads its values). */
  private last: Map<string, LayerOutput> | null = null;
  private version = 0;

  /** `onCell` runs when a conv feature-map cell is clicked: block index, map, row, column. */
  constructor(
    private readonly container: HTMLElement,
    layers: LayerInfo[],
    private readonly input: { height: number; width: number; channels?: number },
    private readonly onCell?: (block: number, channel: number, row: number, col: number) => void,
  ) {
    this.live = el('p', 'visually-hidden');
    this.live.setAttribute('aria-live', 'polite');
    container.append(this.live);
    this.stages.push(
      this.stage(
        null,
        `input ${input.height}×${input.width}`,
        input.channels === 3 ? 'what the network receives: your picture, resized' : 'what the network receives, after centring and scaling',
        1,
        'input',
      ),
    );
    for (const layer of layers) {
      if (layer.kind === 'softmax') continue; // shown as the probability bars
      const [h, w, c] = layer.outputShape;
      const shape = layer.outputShape.join('×');
      if (layer.kind === 'conv')
        this.stages.push(this.stage(layer, `${layer.name} · ${shape}`, `${c} feature maps of ${h}×${w}: ${layer.description}`, c, 'conv'));
      else if (layer.kind === 'dense') this.stages.push(this.stage(layer, `${layer.name} · ${shape}`, `${layer.description}, as a grid`, 1, 'dense'));
      else this.stages.push(this.stage(layer, `${layer.name} · logits`, `one score per class (${layer.outputShape[0]}), before softmax`, 1, 'logits'));
    }
    this.clear();
  }

  private stage(info: LayerInfo | null, title: string, caption: string, tiles: number, kind: string): Stage {
    const box = el('figure', `stage stage-${kind}`);
    const head = el('figcaption');
    head.append(el('strong', '', title), el('span', 'caption', caption));
    const grid = el('div', `tiles tiles-${kind}`);
    if (kind === 'conv') {
      // a square-ish grid of maps, about 250 CSS pixels wide whatever the number of maps
      const cols = Math.ceil(Math.sqrt(tiles));
      grid.style.gridTemplateColumns = `repeat(${cols}, ${Math.floor((250 - 3 * (cols - 1)) / cols)}px)`;
    }
    const canvases: HTMLCanvasElement[] = [];
    for (let i = 0; i < tiles; i++) {
      const c = el('canvas', 'tile');
      c.title = info ? `${info.name} map ${i + 1}` : 'network input';
      canvases.push(c);
      grid.append(c);
    }
    if (kind === 'conv' && info && this.onCell) {
      // every cell of the maps: clickable, and one keyboard grid per layer (cell-grid.ts)
      const block = this.stages.filter((s) => s.info?.kind === 'conv').length;
      for (const c of canvases) {
        c.classList.add('clickable');
        c.title += ': click a cell (or use the arrow keys and Enter) to see how it was computed';
      }
      const valueAt = ({ channel, row, col }: CellPosition) => {
        const out = this.last?.get(info.name);
        return out ? out.data[(row * out.shape[1] + col) * out.shape[2] + channel] : undefined;
      };
      const cols = Math.ceil(Math.sqrt(tiles));
      const keys = new CellGrid(
        grid,
        canvases,
        info.name,
        info.outputShape as [number, number, number],
        cols,
        valueAt,
        (p) => this.onCell?.(block, p.channel, p.row, p.col),
        (line) => {
          this.live.textContent = line;
        },
      );
      this.grids.push(keys);
    }
    const peak = el('span', 'peak', '');
    box.append(head, grid);
    if (kind === 'logits') {
      const labels = el('div', 'logit-labels');
      const classes = info?.outputShape[0] ?? 10;
      labels.style.gridTemplateColumns = `repeat(${classes}, 1fr)`;
      for (let k = 0; k < classes; k++) labels.append(el('span', '', String(k)));
      box.append(labels);
    }
    box.append(peak);
    this.container.append(box);
    return { info, tiles: canvases, peak };
  }

  clear(): void {
    for (const s of this.stages) {
      for (const t of s.tiles) {
        const ctx = t.getContext('2d')!;
        ctx.fillStyle = '#000';
        ctx.fillRect(0, 0, t.width, t.height);
      }
      s.peak.textContent = '';
    }
    this.container.dataset.checksum = '0';
    this.last = null;
    this.relabel();
  }

  /** Keeps the focused map's name (its cell's value) current as the input changes. */
  private relabel(): void {
    for (const g of this.grids) g.label();
  }

  update(look: Look): void {
    const byName = new Map(look.layers.map((l) => [l.name, l]));
    this.last = byName;
    let checksum = 0;
    for (const stage of this.stages) {
      if (stage.info === null) {
        const { height, width } = this.input;
        const channels = this.input.channels ?? 1;
        if (channels === 3) paintRgb(stage.tiles[0], look.input, height, width);
        else paintGrid(stage.tiles[0], height, width, (r, c) => look.input[(r * width + c) * channels], gray, 1);
        continue;
      }
      const out = byName.get(stage.info.name);
      if (!out) continue;
      const d = out.data;
      // ReLU outputs are ≥ 0 (a sequential map); tanh and linear outputs are signed (a diverging one)
      const isSigned = d.some((v) => v < 0);
      const color = isSigned ? signed : heat;
      const peak = maxOf(d, isSigned);
      const peakText = isSigned ? `range ±${peak.toFixed(2)}` : `max ${peak.toFixed(2)}`;
      if (stage.info.kind === 'conv') {
        const [h, w, channels] = out.shape;
        stage.tiles.forEach((tile, ch) => paintGrid(tile, h, w, (r, c) => d[(r * w + c) * channels + ch], color, peak));
        stage.peak.textContent = peakText;
        for (let i = 0; i < d.length; i++) checksum += d[i];
      } else if (stage.info.kind === 'dense') {
        const cols = 16,
          rows = Math.ceil(d.length / cols);
        paintGrid(stage.tiles[0], rows, cols, (r, c) => d[r * cols + c] ?? 0, color, peak);
        stage.peak.textContent = peakText;
      } else {
        const range = maxOf(d, true);
        paintGrid(stage.tiles[0], 1, d.length, (_r, c) => d[c], signed, range);
        stage.peak.textContent = `range ±${range.toFixed(1)}`;
      }
    }
    this.version += 1;
    this.container.dataset.version = String(this.version);
    this.container.dataset.checksum = checksum.toFixed(4);
    this.relabel();
  }
}
