/**
 * The cells of one conv layer's feature maps, operable by keyboard as one grid (the WAI-ARIA roving
 * tabindex pattern): the layer is a single Tab stop (the map holding the cursor has tabindex 0, the others
 * -1); the arrow keys move the cursor one cell, crossing from map to map as they are laid out on screen;
 * Home/End go to the first/last column of the map, PageUp/PageDown to the previous/next map; Enter or Space
 * opens the cell's computation. The focused map's accessible name says layer, map, row, column and value,
 * and each move is announced through a polite live region. A click does what Enter does, at the clicked
 * cell. The cursor is an outlined box over the cell, shown while the layer has the focus.
 */
import { el } from './paint.ts';

export interface CellPosition {
  channel: number;
  row: number;
  col: number;
}

/** Where a key moves the cursor in `maps` maps of h×w laid out `perRow` to a row; null: not a move key. */
export function moveCell(p: CellPosition, key: string, shape: { h: number; w: number; maps: number; perRow: number }): CellPosition | null {
  const { h, w, maps, perRow } = shape;
  // the cell's place in the whole picture of maps: map (mr, mc), then row and column inside it
  const mr = Math.floor(p.channel / perRow),
    mc = p.channel % perRow;
  const at = (gr: number, gc: number): CellPosition => {
    const channel = Math.floor(gr / h) * perRow + Math.floor(gc / w);
    // off the edge, or onto the empty places of a last, partial row of maps: stay put
    if (gr < 0 || gc < 0 || gc >= perRow * w || channel >= maps) return p;
    return { channel, row: gr % h, col: gc % w };
  };
  const gr = mr * h + p.row,
    gc = mc * w + p.col;
  switch (key) {
    case 'ArrowLeft':
      return at(gr, gc - 1);
    case 'ArrowRight':
      return at(gr, gc + 1);
    case 'ArrowUp':
      return at(gr - 1, gc);
    case 'ArrowDown':
      return at(gr + 1, gc);
    case 'Home':
      return { ...p, col: 0 };
    case 'End':
      return { ...p, col: w - 1 };
    case 'PageUp':
      return { ...p, channel: Math.max(0, p.channel - 1) };
    case 'PageDown':
      return { ...p, channel: Math.min(maps - 1, p.channel + 1) };
    default:
      return null;
  }
}

export class CellGrid {
  private pos: CellPosition = { channel: 0, row: 0, col: 0 };
  /** The map whose name currently describes the cursor's cell. */
  private labelled = 0;
  private readonly cursor: HTMLElement;
  private readonly shape: { h: number; w: number; maps: number; perRow: number };

  /**
   * `valueAt` reads the shown activation (undefined before there is an input); `onOpen` explains a cell;
   * `announce` speaks a line through the view's live region.
   */
  constructor(
    private readonly grid: HTMLElement,
    private readonly tiles: HTMLCanvasElement[],
    private readonly layer: string,
    outputShape: [number, number, number],
    perRow: number,
    private readonly valueAt: (p: CellPosition) => number | undefined,
    private readonly onOpen: (p: CellPosition) => void,
    private readonly announce: (line: string) => void,
  ) {
    const [h, w, maps] = outputShape;
    this.shape = { h, w, maps, perRow };
    grid.classList.add('map-keys');
    this.cursor = el('div', 'cell-cursor');
    this.cursor.setAttribute('aria-hidden', 'true');
    grid.append(this.cursor);
    tiles.forEach((tile, channel) => {
      tile.id = `${layer}-map-${channel + 1}`;
      tile.tabIndex = channel === 0 ? 0 : -1;
      tile.setAttribute('aria-label', `${layer} map ${channel + 1} of ${maps}`);
      tile.setAttribute('role', 'button');
      tile.setAttribute('aria-roledescription', 'feature-map cell');
      tile.addEventListener('keydown', (e) => this.key(e));
      tile.addEventListener('focus', () => {
        if (this.pos.channel !== channel) this.pos = { ...this.pos, channel };
        this.show();
      });
      tile.addEventListener('click', (e) => {
        const r = tile.getBoundingClientRect();
        const row = Math.min(h - 1, Math.max(0, Math.floor(((e.clientY - r.top) / r.height) * h)));
        const col = Math.min(w - 1, Math.max(0, Math.floor(((e.clientX - r.left) / r.width) * w)));
        this.moveTo({ channel, row, col }, false);
        this.onOpen(this.pos);
      });
    });
    this.label();
  }

  get position(): CellPosition {
    return this.pos;
  }

  private key(e: KeyboardEvent): void {
    if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      this.onOpen(this.pos);
      return;
    }
    const next = moveCell(this.pos, e.key, this.shape);
    if (!next) return;
    e.preventDefault(); // the arrows and page keys would scroll the page
    this.moveTo(next, true);
  }

  private moveTo(p: CellPosition, speak: boolean): void {
    const changedMap = p.channel !== this.pos.channel;
    this.pos = p;
    for (const [i, t] of this.tiles.entries()) t.tabIndex = i === p.channel ? 0 : -1;
    if (changedMap && document.activeElement && this.tiles.includes(document.activeElement as HTMLCanvasElement)) this.tiles[p.channel].focus();
    this.show();
    if (speak) this.announce(this.describe());
  }

  /** "conv1 map 5 of 16, row 3, column 7: 0.532" */
  describe(): string {
    const { channel, row, col } = this.pos;
    const v = this.valueAt(this.pos);
    const value = v === undefined ? 'no input yet' : `value ${v.toFixed(3)}`;
    return `${this.layer} map ${channel + 1} of ${this.shape.maps}, row ${row}, column ${col}: ${value}`;
  }

  /** The cursor's map is named by its cell and how to use the grid; the others by their number. */
  label(): void {
    const tile = this.tiles[this.pos.channel];
    tile.setAttribute('aria-label', `${this.describe()}. Arrow keys move between cells, Enter shows how this value was computed.`);
    if (this.labelled !== this.pos.channel) {
      const old = this.tiles[this.labelled];
      old?.setAttribute('aria-label', `${this.layer} map ${this.labelled + 1} of ${this.shape.maps}`);
      this.labelled = this.pos.channel;
    }
    this.grid.dataset.cell = `${this.pos.channel},${this.pos.row},${this.pos.col}`;
  }

  /** Places the cursor over the current cell (in the grid's own coordinates) and renames the map. */
  private show(): void {
    const tile = this.tiles[this.pos.channel];
    const { h, w } = this.shape;
    const cw = tile.offsetWidth / w,
      ch = tile.offsetHeight / h;
    Object.assign(this.cursor.style, {
      left: `${tile.offsetLeft + this.pos.col * cw}px`,
      top: `${tile.offsetTop + this.pos.row * ch}px`,
      width: `${cw}px`,
      height: `${ch}px`,
    });
    this.label();
  }
}
