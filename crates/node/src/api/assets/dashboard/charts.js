/*
 * Gavel operator dashboard: the live charts.
 *
 * The dashboard samples GET /control/v1/stats once a second. The stats are cumulative
 * (counters and a Prometheus-style histogram), so a figure per second is the difference
 * between two samples: `ratesBetween` turns a pair of samples into bids per second and
 * the commit latency (mean and a p99 bound) of the commits in between. `RollingSeries`
 * keeps the last two minutes of such points and `drawChart` draws them by hand on a
 * <canvas>: no chart library, nothing loaded from outside the node. The time axis is
 * labelled in the page's language (texts.js).
 */

import { t } from './i18n.js';

/** How much history the charts show. */
export const WINDOW_MS = 120_000;
const AXIS_FONT = '11px system-ui, "PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", sans-serif';

/** A bounded list of `{timeMs, value}` points; `value` null marks a gap. */
export class RollingSeries {
  constructor(windowMs = WINDOW_MS) {
    this.windowMs = windowMs;
    this.points = [];
  }

  push(timeMs, value) {
    this.points.push({ timeMs, value });
    const oldest = timeMs - this.windowMs;
    while (this.points.length > 0 && this.points[0].timeMs < oldest) {
      this.points.shift();
    }
  }

  latest() {
    return this.points.length > 0 ? this.points[this.points.length - 1].value : null;
  }
}

/**
 * What happened between two stats samples: `bidsPerSecond` (bids recorded in the
 * replicated state, from whichever node), and the commit latency of the commands this
 * node proposed in between (`latencyMeanMs`, `latencyP99Ms`), null when none committed.
 * Returns null when the samples cannot be compared (same instant, or a node restart
 * set the counters back).
 */
export function ratesBetween(previous, next) {
  const elapsedSeconds = (next.server_time_ms - previous.server_time_ms) / 1000;
  if (!(elapsedSeconds > 0)) {
    return null;
  }
  const bids = next.bids_recorded - previous.bids_recorded;
  const before = previous.commit_latency;
  const after = next.commit_latency;
  const commits = after.count - before.count;
  if (commits < 0) {
    return null;
  }
  let latencyMeanMs = null;
  let latencyP99Ms = null;
  if (commits > 0) {
    latencyMeanMs = ((after.sum_seconds - before.sum_seconds) / commits) * 1000;
    latencyP99Ms = quantileBoundMs(before.buckets, after.buckets, commits, 0.99);
  }
  return {
    bidsPerSecond: Math.max(0, bids) / elapsedSeconds,
    latencyMeanMs,
    latencyP99Ms,
  };
}

/**
 * The upper bound (ms) of the histogram bucket holding the `quantile` of the
 * observations made between two samples. Above the last bound, the last bound is the
 * best it can say.
 */
function quantileBoundMs(bucketsBefore, bucketsAfter, commits, quantile) {
  const wanted = Math.ceil(commits * quantile);
  for (let index = 0; index < bucketsAfter.length; index += 1) {
    const before = bucketsBefore[index] ? bucketsBefore[index].cumulative_count : 0;
    if (bucketsAfter[index].cumulative_count - before >= wanted) {
      return bucketsAfter[index].le_seconds * 1000;
    }
  }
  const last = bucketsAfter[bucketsAfter.length - 1];
  return last ? last.le_seconds * 1000 : null;
}

/** A round number at or above `value`: 1, 2 or 5 times a power of ten. */
function niceCeiling(value) {
  if (!(value > 0)) {
    return 1;
  }
  const power = Math.pow(10, Math.floor(Math.log10(value)));
  for (const step of [1, 2, 5, 10]) {
    if (step * power >= value) {
      return step * power;
    }
  }
  return 10 * power;
}

/** A colour from the stylesheet's custom properties, so the charts follow the theme. */
function cssColor(name, fallback) {
  const value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return value || fallback;
}

/** Sizes the canvas backing store to its CSS box and the screen's pixel ratio. */
function prepareCanvas(canvas) {
  const ratio = window.devicePixelRatio || 1;
  const width = Math.max(200, canvas.clientWidth);
  const height = Math.max(100, canvas.clientHeight);
  if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
  }
  const context = canvas.getContext('2d');
  context.setTransform(ratio, 0, 0, ratio, 0, 0);
  context.clearRect(0, 0, width, height);
  return { context, width, height };
}

/**
 * Draws line series over the last WINDOW_MS up to `nowMs`.
 * `lines`: [{ series: RollingSeries, colorVariable: '--chart-bids' }]
 * `options`: { formatValue(number) -> string, minimumMaximum: number }
 */
export function drawChart(canvas, lines, nowMs, options) {
  const { context, width, height } = prepareCanvas(canvas);
  const startMs = nowMs - WINDOW_MS;

  let maximum = options.minimumMaximum || 1;
  for (const line of lines) {
    for (const point of line.series.points) {
      if (point.value !== null && point.value > maximum) {
        maximum = point.value;
      }
    }
  }
  maximum = niceCeiling(maximum);

  // Room on the left for the longest axis label ("0.50/s", "0.50 次/秒").
  context.font = AXIS_FONT;
  const labelWidth = Math.max(...[0, 0.5, 1].map((fraction) => context.measureText(options.formatValue(maximum * fraction)).width));
  const margin = { left: Math.max(56, Math.ceil(labelWidth) + 12), right: 10, top: 10, bottom: 22 };
  const plotWidth = width - margin.left - margin.right;
  const plotHeight = height - margin.top - margin.bottom;

  const xOf = (timeMs) => margin.left + ((timeMs - startMs) / WINDOW_MS) * plotWidth;
  const yOf = (value) => margin.top + plotHeight - (value / maximum) * plotHeight;

  drawGrid(context, margin, plotWidth, plotHeight, maximum, options.formatValue, yOf);

  for (const line of lines) {
    drawLine(context, line, startMs, xOf, yOf);
  }
}

/** One series as a polyline broken at gaps; a point alone between gaps is a dot. */
function drawLine(context, line, startMs, xOf, yOf) {
  const color = cssColor(line.colorVariable, '#2a6fdb');
  const points = line.series.points;
  const present = (index) => index >= 0 && index < points.length && points[index].value !== null
    && points[index].timeMs >= startMs;
  context.strokeStyle = color;
  context.fillStyle = color;
  context.lineWidth = 1.75;
  context.beginPath();
  points.forEach((point, index) => {
    if (!present(index)) {
      return;
    }
    const x = xOf(point.timeMs);
    const y = yOf(point.value);
    if (present(index - 1)) {
      context.lineTo(x, y);
    } else {
      context.moveTo(x, y);
    }
    if (!present(index - 1) && !present(index + 1)) {
      context.fillRect(x - 1.5, y - 1.5, 3, 3);
    }
  });
  context.stroke();
}

function drawGrid(context, margin, plotWidth, plotHeight, maximum, formatValue, yOf) {
  const gridColor = cssColor('--chart-grid', '#d9dde3');
  const textColor = cssColor('--chart-text', '#5b6470');
  context.font = AXIS_FONT;
  context.lineWidth = 1;
  context.textBaseline = 'middle';
  for (const fraction of [0, 0.5, 1]) {
    const value = maximum * fraction;
    const y = Math.round(yOf(value)) + 0.5;
    context.strokeStyle = gridColor;
    context.beginPath();
    context.moveTo(margin.left, y);
    context.lineTo(margin.left + plotWidth, y);
    context.stroke();
    context.fillStyle = textColor;
    context.textAlign = 'right';
    context.fillText(formatValue(value), margin.left - 6, y);
  }
  context.textBaseline = 'top';
  const labelY = margin.top + plotHeight + 6;
  context.textAlign = 'left';
  context.fillText(t('axisTwoMinutes'), margin.left, labelY);
  context.textAlign = 'center';
  context.fillText(t('axisOneMinute'), margin.left + plotWidth / 2, labelY);
  context.textAlign = 'right';
  context.fillText(t('axisNow'), margin.left + plotWidth, labelY);
}
