import { api } from './api';
import { clear, fmtTime, h } from './dom';

export interface IntegrityStatus {
  available: boolean;
  ok: boolean;
  checked: number;
  head: { position: number; hash: string };
  problem?: { position: number; kind: string; message: string };
  lastAnchor?: { position: number; hash: string; at: string };
  verifiedAt: string;
}

/** The chain's verify status and last anchor, refreshed every 10 s and on every change of view; red when verify fails. One per login, shown in every view's header. */
export function integrityBadge(): { el: HTMLElement; refresh: () => void; stop: () => void } {
  const badge = h('span', { class: 'badge unknown', role: 'status', 'aria-live': 'polite', id: 'integrity-badge' }, 'integrity: checking…');
  let stopped = false;
  const show = (cls: string, text: string, title: string) => {
    badge.className = `badge ${cls}`;
    clear(badge);
    badge.append(text);
    badge.title = title;
  };
  let asked = 0;
  const tick = async () => {
    const mine = ++asked;
    try {
      const s = await api<IntegrityStatus>('/v1/integrity');
      if (stopped || mine !== asked) return; // a newer answer is coming
      if (!s.available) show('unknown', 'integrity: not available on this store', 'verify walks the embedded SQLite log; this server uses another store');
      else if (s.ok) {
        const anchor = s.lastAnchor ? `anchored at ${s.lastAnchor.position} (${fmtTime(s.lastAnchor.at)})` : 'no anchor yet';
        show('ok', `chain verified · ${s.checked} events · ${anchor}`, `head ${s.head.position} ${s.head.hash}; verified ${fmtTime(s.verifiedAt)}`);
      } else {
        show('bad', `chain verify FAILED at position ${s.problem?.position ?? '?'}: ${s.problem?.kind ?? ''}`, s.problem?.message ?? '');
      }
    } catch (e) {
      if (!stopped && mine === asked) show('unknown', 'integrity: unknown', (e as Error).message);
    }
  };
  void tick();
  const timer = setInterval(tick, 10_000);
  return {
    el: badge,
    refresh: () => void tick(),
    stop: () => {
      stopped = true;
      clearInterval(timer);
    },
  };
}
