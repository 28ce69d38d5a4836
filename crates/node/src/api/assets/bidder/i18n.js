/*
 * The pages' language and formats (bidder page, bidding-hall screen, dashboard): Simplified
 * Chinese and English, Chinese first.
 *
 * - chooseLanguage(): `?lang=zh|en` if given (and remembered in localStorage), else the one
 *   remembered, else the first of navigator.languages that is Chinese or English, else
 *   Chinese (the sales' own language);
 * - money(amount): amounts are whole yuan (元); in Chinese "9,800 元" and, from 10,000 元
 *   up, "1,234.5 万元" (up to four decimals, none dropped that matter); in English
 *   "¥1,234,500";
 * - phaseName(phase): 挂牌, 限时竞价, 成交, 流拍 … or the English words;
 * - dateTime(ms), clockTime(ms): the local format of the language;
 * - translate(table, language): one table per language, { key: text or (args) => text };
 *   t(key, ...args) reads the chosen language's, falling back to English.
 */

export const LANGUAGES = ['zh', 'en'];
const STORAGE_KEY = 'gavel.language';
const WAN = 10000;

const PHASES = {
  zh: {
    scheduled: '待挂牌',
    listing: '挂牌',
    timed_bidding: '限时竞价',
    capped: '达到最高限价',
    secondary_bidding: '二次竞价',
    suspended: '暂停',
    sold: '成交',
    unsold: '流拍',
    terminated: '终止',
  },
  en: {
    scheduled: 'scheduled',
    listing: 'listing',
    timed_bidding: 'timed bidding',
    capped: 'at the price cap',
    secondary_bidding: 'secondary bidding',
    suspended: 'suspended',
    sold: 'sold',
    unsold: 'unsold',
    terminated: 'terminated',
  },
};

/** The language to show, and remembers an explicit `?lang=`. */
export function chooseLanguage(search = globalThis.location?.search ?? '', preferred = globalThis.navigator?.languages ?? []) {
  const asked = new URLSearchParams(search).get('lang');
  if (LANGUAGES.includes(asked)) {
    try { globalThis.localStorage?.setItem(STORAGE_KEY, asked); } catch { /* private mode: not remembered */ }
    return asked;
  }
  let remembered = null;
  try { remembered = globalThis.localStorage?.getItem(STORAGE_KEY); } catch { remembered = null; }
  if (LANGUAGES.includes(remembered)) return remembered;
  for (const tag of preferred) {
    const primary = String(tag).toLowerCase().split('-')[0];
    if (LANGUAGES.includes(primary)) return primary;
  }
  return 'zh';
}

let language = 'zh';
let texts = { zh: {}, en: {} };

/** Sets the language the formats and t() use. */
export function useLanguage(chosen, tables = texts) {
  language = LANGUAGES.includes(chosen) ? chosen : 'zh';
  texts = tables;
  if (globalThis.document) document.documentElement.lang = language === 'zh' ? 'zh-CN' : 'en';
  return language;
}

export const currentLanguage = () => language;

/** The chosen language's text for `key` (English if it has none, the key if neither has). */
export function t(key, ...args) {
  const text = texts[language]?.[key] ?? texts.en?.[key];
  if (text == null) return key;
  return typeof text === 'function' ? text(...args) : text;
}

/** Fills every element with data-t="key" with its text (and data-t-title, data-t-placeholder). */
export function translatePage(root = globalThis.document) {
  for (const element of root.querySelectorAll('[data-t]')) element.textContent = t(element.dataset.t);
  for (const element of root.querySelectorAll('[data-t-title]')) element.title = t(element.dataset.tTitle);
  for (const element of root.querySelectorAll('[data-t-placeholder]')) element.placeholder = t(element.dataset.tPlaceholder);
}

const grouped = (digits) => new Intl.NumberFormat('en-US', { maximumFractionDigits: digits });

/** An amount of whole yuan, as the chosen language writes money. */
export function money(amount, chosen = language) {
  if (amount == null || !Number.isFinite(Number(amount))) return '–';
  const value = Number(amount);
  if (chosen === 'en') return `¥${grouped(0).format(value)}`;
  if (Math.abs(value) >= WAN) return `${grouped(4).format(value / WAN)} 万元`;
  return `${grouped(0).format(value)} 元`;
}

/** A number with thousands grouping (a quantity, a count). */
export const number = (value) => (value == null ? '–' : grouped(4).format(Number(value)));

/** The phase's name in the chosen language (the API's word if unknown). */
export const phaseName = (phase, chosen = language) => PHASES[chosen]?.[phase] ?? phase ?? '–';

const locale = (chosen) => (chosen === 'zh' ? 'zh-CN' : 'en-GB');

/** A date and time (ms since the epoch) in the local format of the language. */
export function dateTime(ms, chosen = language) {
  if (ms == null) return '–';
  return new Date(ms).toLocaleString(locale(chosen), { hour12: false });
}

/** A time of day (ms since the epoch), with seconds. */
export function clockTime(ms, chosen = language) {
  if (ms == null) return '–';
  return new Date(ms).toLocaleTimeString(locale(chosen), { hour12: false });
}

/** A remaining time: "mm:ss.d" under an hour, "h:mm:ss" above. */
export function remaining(ms) {
  const left = Math.max(0, ms);
  const tenths = Math.floor(left / 100) % 10;
  const seconds = Math.floor(left / 1000);
  const pad = (value) => String(value).padStart(2, '0');
  const clock = `${pad(Math.floor(seconds / 60) % 60)}:${pad(seconds % 60)}`;
  return seconds >= 3600 ? `${Math.floor(seconds / 3600)}:${clock}` : `${clock}.${tenths}`;
}

/** Names (and units) of the parcel fields the sales commonly give; others show as given. */
const PARCEL_FIELDS = {
  zh: {
    name: ['地块'], parcel_no: ['地块编号'], location: ['位置'], district: ['区域'], use: ['用途'],
    area_m2: ['面积', '平方米'], plot_ratio: ['容积率'], term_years: ['出让年限', '年'], zoning: ['规划'],
  },
  en: {
    name: ['Parcel'], parcel_no: ['Parcel no.'], location: ['Location'], district: ['District'], use: ['Use'],
    area_m2: ['Area', 'm²'], plot_ratio: ['Plot ratio'], term_years: ['Term', 'years'], zoning: ['Zoning'],
  },
};

/** A parcel's descriptive fields as one line: "面积 12,000 平方米 · 用途 住宅 …". */
export function parcelText(parcel, chosen = language) {
  if (!parcel || typeof parcel !== 'object') return '';
  return Object.entries(parcel).map(([key, value]) => {
    const [label, unit] = PARCEL_FIELDS[chosen]?.[key] ?? [key];
    const shown = typeof value === 'number' ? number(value) : (typeof value === 'string' ? value : JSON.stringify(value));
    return `${label} ${shown}${unit ? ` ${unit}` : ''}`;
  }).join(' · ');
}
