import { h } from './dom';
export function whatIfView(main: HTMLElement): () => void {
  main.append(h('h2', {}, 'What-if'));
  return () => {};
}
