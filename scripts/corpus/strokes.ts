/**
 * Digits drawn the way a person draws them with a mouse on the page's drawing pad: a few strokes through
 * hand-placed control points per digit, bent by a random slant, size and aspect, jittered point by point,
 * followed by a wobbling hand, and drawn white on black with the pad's own pen (280x280 canvas, line width
 * 280/12, round caps), as web/src/draw.ts does.
 */
import { createCanvas } from '@napi-rs/canvas';
import type { Rng } from '../../src/data/batches.ts';

type Pt = [number, number];
/** Per digit, one or more shapes; each shape is a list of strokes through points in a unit box (y down). */
const TEMPLATES: { strokes: Pt[][]; smooth: boolean }[][] = [
  [
    {
      smooth: true,
      strokes: [
        [
          [0.5, 0.02],
          [0.18, 0.2],
          [0.12, 0.55],
          [0.3, 0.92],
          [0.6, 0.97],
          [0.86, 0.7],
          [0.86, 0.3],
          [0.62, 0.04],
          [0.48, 0.04],
        ],
      ],
    },
  ],
  [
    {
      smooth: false,
      strokes: [
        [
          [0.55, 0.02],
          [0.47, 0.98],
        ],
      ],
    },
    {
      smooth: false,
      strokes: [
        [
          [0.3, 0.2],
          [0.58, 0.02],
          [0.5, 0.98],
        ],
      ],
    },
  ],
  [
    {
      smooth: true,
      strokes: [
        [
          [0.12, 0.25],
          [0.35, 0.03],
          [0.7, 0.05],
          [0.82, 0.3],
          [0.6, 0.6],
          [0.12, 0.97],
          [0.5, 0.95],
          [0.92, 0.96],
        ],
      ],
    },
    {
      smooth: true,
      strokes: [
        [
          [0.15, 0.2],
          [0.5, 0.02],
          [0.82, 0.25],
          [0.45, 0.65],
          [0.15, 0.95],
          [0.9, 0.92],
        ],
      ],
    },
  ],
  [
    {
      smooth: true,
      strokes: [
        [
          [0.15, 0.12],
          [0.5, 0.01],
          [0.82, 0.18],
          [0.72, 0.4],
          [0.42, 0.5],
          [0.78, 0.6],
          [0.86, 0.82],
          [0.55, 0.99],
          [0.14, 0.88],
        ],
      ],
    },
  ],
  [
    {
      smooth: false,
      strokes: [
        [
          [0.55, 0.02],
          [0.1, 0.62],
          [0.92, 0.62],
        ],
        [
          [0.68, 0.3],
          [0.66, 0.99],
        ],
      ],
    },
    {
      smooth: false,
      strokes: [
        [
          [0.2, 0.02],
          [0.15, 0.55],
          [0.85, 0.55],
        ],
        [
          [0.78, 0.05],
          [0.72, 0.99],
        ],
      ],
    },
  ],
  [
    {
      smooth: false,
      strokes: [
        [
          [0.85, 0.03],
          [0.28, 0.03],
          [0.22, 0.45],
        ],
        [
          [0.22, 0.45],
          [0.55, 0.38],
          [0.82, 0.55],
          [0.82, 0.8],
          [0.55, 0.98],
          [0.15, 0.9],
        ],
      ],
    },
  ],
  [
    {
      smooth: true,
      strokes: [
        [
          [0.75, 0.03],
          [0.4, 0.2],
          [0.2, 0.55],
          [0.25, 0.88],
          [0.52, 0.99],
          [0.8, 0.85],
          [0.78, 0.6],
          [0.5, 0.5],
          [0.24, 0.66],
        ],
      ],
    },
  ],
  [
    {
      smooth: false,
      strokes: [
        [
          [0.1, 0.04],
          [0.9, 0.04],
          [0.42, 0.98],
        ],
      ],
    },
    {
      smooth: false,
      strokes: [
        [
          [0.12, 0.06],
          [0.88, 0.04],
          [0.55, 0.5],
          [0.4, 0.98],
        ],
      ],
    },
  ],
  [
    {
      smooth: true,
      strokes: [
        [
          [0.55, 0.47],
          [0.22, 0.3],
          [0.3, 0.04],
          [0.7, 0.04],
          [0.78, 0.28],
          [0.5, 0.5],
          [0.18, 0.72],
          [0.3, 0.97],
          [0.72, 0.97],
          [0.82, 0.72],
          [0.5, 0.5],
        ],
      ],
    },
  ],
  [
    {
      smooth: true,
      strokes: [
        [
          [0.8, 0.3],
          [0.55, 0.5],
          [0.25, 0.42],
          [0.2, 0.2],
          [0.45, 0.02],
          [0.75, 0.08],
          [0.8, 0.3],
          [0.74, 0.65],
          [0.62, 0.99],
        ],
      ],
    },
    {
      smooth: false,
      strokes: [
        [
          [0.78, 0.25],
          [0.5, 0.45],
          [0.25, 0.3],
          [0.45, 0.04],
          [0.78, 0.2],
          [0.7, 0.99],
        ],
      ],
    },
  ],
];

/** Catmull-Rom through the points (or straight segments), every ~0.01 of the unit box. */
function trace(points: Pt[], smooth: boolean): Pt[] {
  const out: Pt[] = [];
  for (let i = 0; i < points.length - 1; i++) {
    const p0 = points[Math.max(0, i - 1)],
      p1 = points[i],
      p2 = points[i + 1],
      p3 = points[Math.min(points.length - 1, i + 2)];
    const steps = Math.max(2, Math.ceil(Math.hypot(p2[0] - p1[0], p2[1] - p1[1]) / 0.01));
    for (let k = 0; k < steps; k++) {
      const t = k / steps,
        t2 = t * t,
        t3 = t2 * t;
      if (!smooth) {
        out.push([p1[0] + (p2[0] - p1[0]) * t, p1[1] + (p2[1] - p1[1]) * t]);
        continue;
      }
      const f = (a: number, b: number, c: number, d: number) => 0.5 * (2 * b + (-a + c) * t + (2 * a - 5 * b + 4 * c - d) * t2 + (-a + 3 * b - 3 * c + d) * t3);
      out.push([f(p0[0], p1[0], p2[0], p3[0]), f(p0[1], p1[1], p2[1], p3[1])]);
    }
  }
  out.push(points[points.length - 1]);
  return out;
}

/** A PNG of digit `label` drawn on a `side`x`side` pad. */
export function drawDigit(label: number, rng: Rng, side = 280): Uint8Array {
  const shapes = TEMPLATES[label];
  const shape = shapes[rng.int(shapes.length)];
  const u = (a: number, b: number) => a + (b - a) * rng.next();
  const height = side * u(0.45, 0.85),
    width = height * u(0.55, 0.85),
    slant = u(-0.3, 0.15);
  const left = u(0.05 * side, side - width - 0.05 * side),
    top = u(0.05 * side, side - height - 0.05 * side);
  const canvas = createCanvas(side, side);
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = '#000';
  ctx.fillRect(0, 0, side, side);
  ctx.strokeStyle = '#fff';
  ctx.lineWidth = side / 12;
  ctx.lineCap = 'round';
  ctx.lineJoin = 'round';
  for (const stroke of shape.strokes) {
    const jittered = stroke.map(([x, y]): Pt => [x + 0.04 * rng.normal(), y + 0.03 * rng.normal()]);
    const path = trace(jittered, shape.smooth);
    // a wobbling hand: a slow random walk added to the path
    let wx = 0,
      wy = 0;
    ctx.beginPath();
    path.forEach(([x, y], i) => {
      wx = 0.9 * wx + 0.004 * rng.normal();
      wy = 0.9 * wy + 0.004 * rng.normal();
      const px = left + (x + wx + slant * (1 - y - 0.5)) * width,
        py = top + (y + wy) * height;
      if (i === 0) ctx.moveTo(px, py);
      else ctx.lineTo(px, py);
    });
    ctx.stroke();
  }
  return canvas.toBuffer('image/png');
}
