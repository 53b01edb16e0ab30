import { describe, expect, it } from 'vitest';
import { exposedNames, metricNames } from './promql-names.ts';

describe('metricNames', () => {
  it('finds the series a query reads, not its functions, labels, ranges or grouping', () => {
    expect(
      metricNames('histogram_quantile(0.95, sum by (le, platform) (rate(veil_a_bucket{platform=~"$platform", x="y z"}[$__rate_interval])))').sort(),
    ).toEqual(['veil_a_bucket']);
    expect(metricNames('sum(rate(a_total{s="503"}[5m])) / sum(rate(b_total[5m])) > 0.05 and on(platform) c >= 10').sort()).toEqual(['a_total', 'b_total', 'c']);
    expect(metricNames('count(up{job="w"} == 1) or vector(0)')).toEqual(['up']);
    expect(metricNames('absent(up{job="w"} == 1)')).toEqual(['up']);
    expect(metricNames('max by (platform, app_id) (veil_x) == 0')).toEqual(['veil_x']);
  });
});

describe('exposedNames', () => {
  it('declares TYPE names and the series names of histograms', () => {
    const names = exposedNames('# HELP h x\n# TYPE h histogram\nh_bucket{le="1"} 0\n# TYPE c counter\n');
    expect([...names].sort()).toEqual(['c', 'h', 'h_bucket', 'h_count', 'h_sum']);
  });
});
