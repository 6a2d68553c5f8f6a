/**
 * @jest-environment-options {"database": false}
 */
import { lookupsBetween, parseCacheLookups, sampleSum } from './prometheus';

describe('prometheus', () => {
  const text = [
    '# HELP blog_response_cache_lookups_total Compiled reads looked up in the response cache, by result (hit, miss)',
    '# TYPE blog_response_cache_lookups_total counter',
    'blog_response_cache_lookups_total{result="hit",service="blog-api"} 1200',
    'blog_response_cache_lookups_total{service="blog-api",result="miss"} 34',
    'blog_response_cache_lookups_total_created{result="hit"} 99',
    'blog_feed_delay_seconds_bucket{le="0.001",service="blog-api"} 5',
    'blog_feed_delay_seconds_count 7',
  ].join('\n');

  test('counters by label, whatever the order of the labels; other metrics ignored', () => {
    expect(parseCacheLookups(text)).toEqual({ hit: 1200, miss: 34 });
    expect(sampleSum(text, 'blog_feed_delay_seconds_count')).toBe(7);
    expect(sampleSum(text, 'blog_feed_delay_seconds_bucket', { le: '0.001' })).toBe(5);
    expect(sampleSum(text, 'blog_missing_total')).toBe(0);
    expect(parseCacheLookups('')).toEqual({ hit: 0, miss: 0 });
  });

  test('a phase is the difference of two readings', () => {
    expect(lookupsBetween({ hit: 10, miss: 5 }, { hit: 100, miss: 15 })).toEqual({ hit: 90, miss: 10, ratio: 0.9 });
    expect(lookupsBetween({ hit: 1, miss: 1 }, { hit: 1, miss: 1 }).ratio).toBeNaN();
  });
});
