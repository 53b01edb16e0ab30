/**
 * The metric names a PromQL expression reads. Not a full parser: it drops what cannot hold a
 * metric name (strings, label matchers, ranges, grouping clauses) and keeps the identifiers that
 * are not functions, operators or aggregation keywords. Enough for the expressions in our rules
 * and dashboard, which the test also runs through promtool.
 */
const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'inf', 'nan']);

export function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const m of stripped.matchAll(/(?<![\w.$])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:]|\s*\()/g)) {
    if (!KEYWORDS.has(m[1]!.toLowerCase())) names.add(m[1]!);
  }
  return [...names];
}

/** Names a Prometheus text exposition declares (`# TYPE` lines), with each histogram's series names. */
export function exposedNames(exposition: string): Set<string> {
  const names = new Set<string>();
  for (const m of exposition.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    names.add(m[1]!);
    if (m[2] === 'histogram') for (const s of ['_bucket', '_count', '_sum']) names.add(`${m[1]}${s}`);
    if (m[2] === 'summary') for (const s of ['_count', '_sum']) names.add(`${m[1]}${s}`);
  }
  return names;
}
