/** A grouped bar chart as a standalone SVG: benchmarks draw their cells with it (bench/ws.ts). */

/** One bar: its value (drawn to scale), the text above it and an optional second line below the group's bars. */
export interface Bar {
  readonly value: number;
  readonly label: string;
  readonly note?: string;
}

/** One group of bars, in the order of the series. */
export interface BarGroup {
  readonly label: string;
  readonly bars: readonly Bar[];
}

const escape = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/**
 * Groups side by side, each with one bar per series (colours and names in the legend), scaled to
 * the largest value; `title` on top. Bars of value 0 or less are drawn as a hairline.
 */
export function groupedBars(title: string, series: readonly { name: string; colour: string }[], groups: readonly BarGroup[]): string {
  const barW = 64;
  const gap = 4;
  const groupW = series.length * (barW + gap) + 40;
  const plotH = 200;
  const top = 40;
  const legendY = top + plotH + 50;
  const width = Math.max(20 + groups.length * groupW, 20 + series.length * 170, 20 + title.length * 7); // ~7 px a character at 13 px
  const height = legendY + 20;
  const max = Math.max(...groups.flatMap((g) => g.bars.map((b) => b.value)), 1e-12);
  const parts: string[] = [`<text x="10" y="16" font-size="13">${escape(title)}</text>`];
  groups.forEach((g, gi) => {
    const x0 = 20 + gi * groupW;
    g.bars.forEach((b, bi) => {
      const h = Math.max((b.value / max) * plotH, 1);
      const x = x0 + bi * (barW + gap);
      const y = top + plotH - h;
      parts.push(`<rect x="${x}" y="${y.toFixed(1)}" width="${barW}" height="${h.toFixed(1)}" fill="${series[bi]?.colour ?? '#888'}"/>`);
      parts.push(`<text x="${x + barW / 2}" y="${(y - 4).toFixed(1)}" font-size="11" text-anchor="middle">${escape(b.label)}</text>`);
      if (b.note !== undefined) parts.push(`<text x="${x + barW / 2}" y="${top + plotH + 14}" font-size="10" text-anchor="middle">${escape(b.note)}</text>`);
    });
    parts.push(`<text x="${x0 + (series.length * (barW + gap)) / 2}" y="${top + plotH + 32}" font-size="12" text-anchor="middle">${escape(g.label)}</text>`);
  });
  series.forEach((s, i) => {
    const x = 10 + i * 170;
    parts.push(`<rect x="${x}" y="${legendY - 10}" width="12" height="12" fill="${s.colour}"/><text x="${x + 16}" y="${legendY}" font-size="11">${escape(s.name)}</text>`);
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif">${parts.join('')}</svg>\n`;
}
