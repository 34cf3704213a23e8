-- The end-of-run report of the bench's wrk scripts (bench/post.lua, bench/soak.lua): one
-- BENCH_JSON line (latencies in microseconds) that bench/run.py and bench/soak.py parse.
-- Loaded with dofile() from the script's own directory; returns wrk's done() callback.

return function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\nBENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"err_connect":%d,"err_read":%d,' ..
    '"err_write":%d,"err_status":%d,"err_timeout":%d,"lat_mean":%.1f,"lat_p50":%d,"lat_p90":%d,' ..
    '"lat_p99":%d,"lat_max":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency.mean, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max))
end
