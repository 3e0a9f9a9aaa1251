import { h } from './dom';
export function editorView(main: HTMLElement): () => void {
  main.append(h('h2', {}, 'Policy editor'));
  return () => {};
}
