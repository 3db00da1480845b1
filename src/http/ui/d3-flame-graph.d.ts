// The part of d3-flame-graph's API the page uses (the package ships no types).
declare module 'd3-flame-graph' {
  interface FlameGraph {
    (selection: unknown): void;
    width(w: number): FlameGraph;
    cellHeight(h: number): FlameGraph;
    transitionDuration(ms: number): FlameGraph;
    minFrameSize(px: number): FlameGraph;
    sort(on: boolean): FlameGraph;
    setDetailsElement(e: HTMLElement): FlameGraph;
    label(f: (node: { data: never; value: number }) => string): FlameGraph;
    destroy(): void;
  }
  export default function flamegraph(): FlameGraph;
}
