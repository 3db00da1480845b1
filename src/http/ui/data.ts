// What ui/data.json answers: shared by the server (src/http/ui.ts) and the page's script (app.ts).

/** A node of the flame graph: a function, with everything that went through it. */
export interface TreeNode {
  name: string;
  file: string;
  value: number;
  children: TreeNode[];
}

/** What the page shows for one profile, lock and sample type. */
export interface FlameData {
  profile: string;
  /** every profile the page can show */
  profiles: string[];
  sampleTypes: ReadonlyArray<{ readonly type: string; readonly unit: string }>;
  /** the sample type shown */
  value: string;
  /** the profile's locks with their totals, largest first ('' for unnamed locks) */
  locks: Array<{ name: string; value: number }>;
  total: number;
  tree: TreeNode;
  comments: readonly string[];
  /** the window shown: 0 since the process started, N the delta of N seconds; null for a profile of now (locks) */
  seconds: number | null;
}
