/**
 * How one number was computed (CNN Explainer's convolution view, on the live network): pick a cell of a
 * feature map (click it, or use the controls) and see its receptive field on the input, the window of
 * the previous layer, the filter, their products and sum plus bias, then the pool and the activation
 * that produced the value the map shows. The arithmetic is src/explain/cell.ts; the view shows the
 * network's own activation beside the explained one.
 */
import { explainCell, type CellExplanation, type ConvAt, type Layer } from '../../../src/explain/cell.ts';
import type { Look, Network } from '../network.ts';
import { el, gray, paintGrid, paintRgb, signed } from './paint.ts';

const fmt = (v: number) => (Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(3));

export interface CellChoice {
  block: number;
  channel: number;
  row: number;
  col: number;
}

export class CellView {
  private readonly controls: {
    block: HTMLSelectElement;
    channel: HTMLInputElement;
    row: HTMLInputElement;
    col: HTMLInputElement;
    inChannel: HTMLSelectElement;
  };
  private readonly body: HTMLElement;
  private readonly field: HTMLCanvasElement;
  private last: { network: Network; look: Look } | null = null;

  constructor(
    private readonly container: HTMLElement,
    private readonly convShapes: [number, number, number][],
  ) {
    const form = el('div', 'row cell-controls');
    const labelled = <T extends HTMLElement>(text: string, control: T, id: string): T => {
      const label = el('label', '', `${text} `);
      control.id = id;
      label.append(control);
      form.append(label);
      return control;
    };
    const block = labelled('layer', el('select'), 'cell-block');
    convShapes.forEach((_, i) => block.append(new Option(`conv${i + 1}`, String(i))));
    const number = (min: number) => {
      const input = el('input');
      input.type = 'number';
      input.min = String(min);
      input.value = String(min);
      input.inputMode = 'numeric';
      return input;
    };
    const channel = labelled('map', number(1), 'cell-map');
    const row = labelled('row', number(0), 'cell-row');
    const col = labelled('column', number(0), 'cell-col');
    const inChannel = labelled('window of input channel', el('select'), 'cell-in-channel');
    this.controls = { block, channel, row, col, inChannel };
    this.field = el('canvas', 'cell-field');
    this.field.width = this.field.height = 168;
    this.field.setAttribute('role', 'img');
    this.body = el('div', 'cell-body');
    this.body.setAttribute('aria-live', 'polite');
    container.append(form, this.body);
    for (const c of [block, channel, row, col]) c.addEventListener('change', () => this.limit() && this.redraw(true));
    inChannel.addEventListener('change', () => this.redraw(false));
    this.limit();
    this.body.append(el('p', 'hint', 'Click any cell of a conv feature map above (or set layer, map, row and column here) to see how its value was computed.'));
    this.container.dataset.value = '';
  }

  /** Clamps the controls to the chosen layer's shape; returns true. */
  private limit(): boolean {
    const [h, w, c] = this.convShapes[Number(this.controls.block.value)];
    const clamp = (input: HTMLInputElement, min: number, max: number) => {
      input.max = String(max);
      const v = Math.round(Number(input.value));
      input.value = String(Number.isFinite(v) ? Math.min(Math.max(v, min), max) : min);
    };
    clamp(this.controls.channel, 1, c);
    clamp(this.controls.row, 0, h - 1);
    clamp(this.controls.col, 0, w - 1);
    return true;
  }

  get choice(): CellChoice {
    const { block, channel, row, col } = this.controls;
    return { block: Number(block.value), channel: Number(channel.value) - 1, row: Number(row.value), col: Number(col.value) };
  }

  /** Selects a cell (a click on a feature map) and explains it. */
  select(choice: CellChoice): void {
    this.controls.block.value = String(choice.block);
    this.controls.channel.value = String(choice.channel + 1);
    this.controls.row.value = String(choice.row);
    this.controls.col.value = String(choice.col);
    this.limit();
    this.container.dataset.selected = 'true';
    this.redraw(true);
    this.container.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
  }

  clear(): void {
    this.last = null;
    this.container.dataset.value = '';
    if (this.container.dataset.selected) this.body.replaceChildren(el('p', 'hint', 'Draw or load a picture to see the numbers.'));
  }

  update(network: Network, look: Look): void {
    this.last = { network, look };
    if (this.container.dataset.selected) this.redraw(false);
  }

  private redraw(resetInChannel: boolean): void {
    if (!this.last) return;
    const { network, look } = this.last;
    const { block, channel, row, col } = this.choice;
    const net = network.net;
    const input: Layer =
      block === 0
        ? { height: net.input.height, width: net.input.width, channels: net.input.channels, data: look.input }
        : {
            height: this.convShapes[block - 1][0],
            width: this.convShapes[block - 1][1],
            channels: this.convShapes[block - 1][2],
            data: look.layers[block - 1].data,
          };
    const kernel = network.params.get(`conv${block + 1}/kernel`)!.dataSync() as Float32Array;
    const bias = network.params.get(`conv${block + 1}/bias`)!.dataSync() as Float32Array;
    const e = explainCell(net, block, input, kernel, bias, row, col, channel);
    const out = look.layers[block];
    const [, w, c] = out.shape;
    const actual = out.data[(row * w + col) * c + channel];
    const pos = e.positions[e.chosen];

    // the input channel whose window is shown: by default the one that contributed most
    const inChannel = this.controls.inChannel;
    if (resetInChannel || inChannel.options.length !== input.channels) {
      inChannel.replaceChildren(
        ...Array.from(
          { length: input.channels },
          (_, k) => new Option(block === 0 ? (input.channels === 1 ? 'input' : ['red', 'green', 'blue'][k]) : `conv${block} map ${k + 1}`, String(k)),
        ),
      );
      let best = 0;
      for (let k = 1; k < input.channels; k++) if (Math.abs(pos.channelSums[k]) > Math.abs(pos.channelSums[best])) best = k;
      inChannel.value = String(best);
    }
    const shownChannel = Number(inChannel.value);

    this.container.dataset.value = String(e.value);
    this.container.dataset.activation = String(actual);
    this.container.dataset.sum = String(pos.sum);
    this.container.dataset.receptive = `${e.receptiveField.rows.from},${e.receptiveField.cols.from},${e.receptiveField.rows.to},${e.receptiveField.cols.to}`;
    this.body.replaceChildren(this.fieldFigure(look, e, net.input.channels), this.convFigure(e, pos, shownChannel, block), this.poolFigure(e, actual));
  }

  private fieldFigure(look: Look, e: CellExplanation, channels: number): HTMLElement {
    const fig = el('figure', 'cell-step');
    const { rows, cols } = e.receptiveField;
    const side = Math.round(Math.sqrt(look.input.length / channels));
    const tmp = el('canvas');
    if (channels === 3) paintRgb(tmp, look.input, side, side);
    else paintGrid(tmp, side, side, (r, c) => look.input[(r * side + c) * channels], gray, 1);
    const ctx = this.field.getContext('2d')!;
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(tmp, 0, 0, this.field.width, this.field.height);
    const s = this.field.width / side;
    ctx.strokeStyle = '#fb923c';
    ctx.lineWidth = 2;
    ctx.strokeRect(cols.from * s + 1, rows.from * s + 1, (cols.to - cols.from + 1) * s - 2, (rows.to - rows.from + 1) * s - 2);
    const size = `${rows.to - rows.from + 1}×${cols.to - cols.from + 1}`;
    this.field.setAttribute('aria-label', `input with the receptive field outlined: rows ${rows.from}–${rows.to}, columns ${cols.from}–${cols.to}`);
    fig.append(
      this.field,
      el(
        'figcaption',
        '',
        `1 · receptive field: the ${size} input pixels (rows ${rows.from}–${rows.to}, columns ${cols.from}–${cols.to}) that conv${e.block + 1} map ${e.channel + 1} at (${e.row}, ${e.col}) depends on`,
      ),
    );
    return fig;
  }

  private convFigure(e: CellExplanation, pos: ConvAt, ch: number, block: number): HTMLElement {
    const fig = el('figure', 'cell-step cell-conv');
    const k = pos.size,
      cin = pos.channels;
    const slice = (a: Float32Array) => Array.from({ length: k * k }, (_, i) => a[i * cin + ch]);
    const grids = el('div', 'cell-grids');
    const source = block === 0 ? 'input' : `conv${block} map ${ch + 1}`;
    grids.append(
      numberGrid(
        `window of ${source} (rows ${pos.top}…${pos.top + k - 1}, cols ${pos.left}…${pos.left + k - 1}${pos.top < 0 || pos.left < 0 ? '; 0 = padding' : ''})`,
        slice(pos.window),
        k,
        'window',
      ),
      el('span', 'op', '×'),
      numberGrid(
        `filter ${e.channel + 1}, ${block === 0 && cin === 3 ? `${['red', 'green', 'blue'][ch]} channel` : `input channel ${ch + 1}`}`,
        slice(pos.filter),
        k,
        'filter',
      ),
      el('span', 'op', '='),
      numberGrid('products', slice(pos.products), k, 'products'),
    );
    const sums = el('p', 'cell-sum');
    const channelPart =
      cin === 1
        ? `Σ products = ${fmt(pos.sum)}`
        : `Σ products over all ${cin} input channels = ${Array.from(pos.channelSums, (s, i) => (i === ch ? `[${fmt(s)}]` : fmt(s))).join(' + ')} = ${fmt(pos.sum)}`;
    sums.textContent = `${channelPart}; + bias ${fmt(pos.bias)} = ${fmt(pos.value)}`;
    sums.id = 'cell-sum';
    fig.append(
      grids,
      sums,
      el(
        'figcaption',
        '',
        `2 · convolution at (${pos.row}, ${pos.col}) of the ${e.config.size}×${e.config.size} conv, stride ${e.config.stride}, ${e.config.padding} padding`,
      ),
    );
    return fig;
  }

  private poolFigure(e: CellExplanation, actual: number): HTMLElement {
    const fig = el('figure', 'cell-step');
    const cfg = e.config;
    const first = cfg.order === 'activation-then-pool';
    const values = e.positions.map((p) => (first ? p.activated! : p.value));
    const list = el('p', 'cell-pool');
    const pooledText =
      cfg.pool === 'none'
        ? 'no pooling'
        : `${cfg.pool === 'max' ? 'max' : 'mean'} of the ${values.length} values [${values.map((v, i) => (cfg.pool === 'max' && i === e.chosen ? `▸${fmt(v)}` : fmt(v))).join(', ')}] = ${fmt(e.pooled)}`;
    list.textContent = first
      ? `${cfg.activation} of each convolution, then ${pooledText}`
      : `${pooledText}; then ${cfg.activation}(${fmt(e.pooled)}) = ${fmt(e.value)}`;
    const check = el('p', 'cell-check');
    const same = Math.abs(e.value - actual) <= 1e-4 * Math.max(1, Math.abs(actual));
    check.textContent = `= ${fmt(e.value)}; the network computed ${fmt(actual)} ${same ? '✓ the same' : '✗ differs'}`;
    check.classList.add(same ? 'agree' : 'disagree');
    check.id = 'cell-check';
    fig.append(
      list,
      check,
      el(
        'figcaption',
        '',
        `3 · ${cfg.pool === 'none' ? '' : `${cfg.pool}-pool ${cfg.poolSize}×${cfg.poolSize} and `}${cfg.activation}: the value shown in the map`,
      ),
    );
    return fig;
  }
}

/** A k×k table of numbers, each cell tinted by its value (diverging: blue negative, orange positive). */
function numberGrid(title: string, values: number[], k: number, kind: string): HTMLElement {
  const box = el('div', `cell-grid cell-grid-${kind}`);
  const table = el('table');
  table.setAttribute('aria-label', title);
  let peak = 0;
  for (const v of values) peak = Math.max(peak, Math.abs(v));
  for (let r = 0; r < k; r++) {
    const tr = el('tr');
    for (let c = 0; c < k; c++) {
      const v = values[r * k + c];
      const td = el('td', '', fmt(v));
      const [red, green, blue] = kind === 'window' && v >= 0 ? gray(peak > 0 ? v / peak : 0) : signed(peak > 0 ? v / peak : 0);
      td.style.background = `rgb(${red | 0}, ${green | 0}, ${blue | 0})`;
      td.style.color = red + green + blue > 380 ? '#111' : '#f3f4f6';
      tr.append(td);
    }
    table.append(tr);
  }
  box.append(el('span', 'cell-grid-title', title), table);
  return box;
}
