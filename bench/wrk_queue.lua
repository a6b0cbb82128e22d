-- wrk script of the single-call benchmark (bench/run.sh): POSTs one call as
-- JSON to the URL given on wrk's command line with the bearer key, rotating
-- through 1,000 prebuilt requests (+1 212 555 XXXX numbers, all valid).
--
--   BENCH_KEY=obk_... BENCH_OUT=out.json wrk -t2 -c64 -d20s --latency \
--     -s bench/wrk_queue.lua http://127.0.0.1:23080/api/v1/deployments/ID/calls
--
-- BENCH_KEY: the API key (required). BENCH_OUT: where done() writes a JSON
-- summary (requests, duration, latency percentiles in microseconds, a count
-- per HTTP status and wrk's socket errors); stdout when unset.

local threads = {}

function setup(thread)
	thread:set("id", #threads + 1)
	table.insert(threads, thread)
end

function init(args)
	local key = os.getenv("BENCH_KEY")
	if not key or key == "" then
		error("set BENCH_KEY to the API key")
	end
	local headers = {
		["Authorization"] = "Bearer " .. key,
		["Content-Type"] = "application/json",
	}
	requests = {}
	for i = 0, 999 do
		local n = (id * 1000 + i) % 10000
		local body = string.format(
			'{"phone_number":"+1 212 555 %04d","message_reference":"bench-single-%d-%d",'
				.. '"call_parameters":{"customer":"Customer %d"}}',
			n, id, i, n)
		requests[i + 1] = wrk.format("POST", nil, headers, body)
	end
	next_request = 0
	statuses = {}
end

function request()
	next_request = next_request % #requests + 1
	return requests[next_request]
end

function response(status, headers, body)
	statuses[status] = (statuses[status] or 0) + 1
end

local function json_string(s)
	return '"' .. tostring(s):gsub('[%c"\\]', function(c)
		return string.format("\\u%04x", c:byte())
	end) .. '"'
end

function done(summary, latency, requests)
	local counts = {}
	for _, t in ipairs(threads) do
		for status, n in pairs(t:get("statuses") or {}) do
			counts[status] = (counts[status] or 0) + n
		end
	end
	local parts = {}
	for status, n in pairs(counts) do
		table.insert(parts, string.format("%s:%d", json_string(status), n))
	end
	local e = summary.errors
	local out = string.format(
		'{"requests":%d,"duration_us":%d,"bytes":%d,'
			.. '"latency_us":{"min":%d,"mean":%.1f,"stdev":%.1f,"max":%d,'
			.. '"p50":%d,"p90":%d,"p99":%d,"p999":%d},'
			.. '"statuses":{%s},'
			.. '"socket_errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d},'
			.. '"non_2xx_3xx":%d}\n',
		summary.requests, summary.duration, summary.bytes,
		latency.min, latency.mean, latency.stdev, latency.max,
		latency:percentile(50), latency:percentile(90), latency:percentile(99),
		latency:percentile(99.9),
		table.concat(parts, ","),
		e.connect, e.read, e.write, e.timeout, e.status)
	local path = os.getenv("BENCH_OUT")
	if path and path ~= "" then
		local f = assert(io.open(path, "w"))
		f:write(out)
		f:close()
	else
		io.write(out)
	end
end
