
use builtin;
use str;

set edit:completion:arg-completer[lrwatch] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'lrwatch'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'lrwatch'= {
            cand -x 'Run CMD with `sh -c` for each event instead of printing it'
            cand --exec 'Run CMD with `sh -c` for each event instead of printing it'
            cand --select 'Follow only the part of a JSON value at this JSON Pointer (RFC 6901), e.g. /items/0; an event is emitted only when that part changes'
            cand -n 'Exit 0 after N events (the initial value counts)'
            cand --count 'Exit 0 after N events (the initial value counts)'
            cand --color 'When to use color: auto (a terminal, NO_COLOR unset, TERM not dumb), always, never'
            cand -t 'Give up after SECS seconds and exit 124; a running --exec command is stopped'
            cand --timeout 'Give up after SECS seconds and exit 124; a running --exec command is stopped'
            cand --urls 'Read more URLs to follow from FILE (- for standard input): one URL or NAME=URL a line; blank lines and lines starting with # are skipped. Followed with those on the command line; a bad line is a usage error naming the line'
            cand -H 'Extra request header "NAME: VALUE", repeatable; sent only to the resource''s own origin'
            cand --header 'Extra request header "NAME: VALUE", repeatable; sent only to the resource''s own origin'
            cand --verify 'On push and long-poll transports, a conditional GET of each resource every SECS (fractions allowed; 0 turns it off), so that a server that silently forgot a subscription is noticed: the change is reported, a warning says the server missed a push, and the transport is resubscribed'
            cand --callback-listen 'Receive webhook notifications on a local listener at ADDR [default: 127.0.0.1 on a free port]; lets auto use value-callback / changes-callback'
            cand --callback-url 'The URL servers should POST webhook notifications to, when it is not the listener''s own (behind a tunnel or NAT); lets auto use callbacks. Every subscription is deleted when lrwatch exits, however it exits'
            cand --max-body 'The largest response body, event-stream event or socket message accepted, in bytes (K, M, G suffixes: KiB, MiB, GiB), at most 4G. Over it, following that resource stops with exit 1'
            cand --max-header 'The largest response head (status line and headers) accepted, in bytes (K, M suffixes), at most 100M. Each open connection holds a buffer this large'
            cand --cacert 'Trust the certificate authorities in this PEM file for https and wss, instead of the bundled Mozilla roots (as curl''s --cacert does)'
            cand --transport 'Transport: auto (the best one offered), or force one; forcing one that the resource does not advertise is an error naming what it does advertise'
            cand --wait 'The wait for long-polls, in seconds (sent as `Wait` and `Prefer: wait=`)'
            cand --interval 'Plain-polling period in seconds, fractions allowed [default: the server''s X-Poll-Interval, else 5]'
            cand --subprotocol 'For ws:// and wss:// URLs: offer this subprotocol in the handshake'
            cand --send 'For ws:// and wss:// URLs: send TEXT as a text message after each connect, repeatable, in order (nothing is sent otherwise)'
            cand -j 'One JSON envelope per event, one per line (NDJSON)'
            cand --json 'One JSON envelope per event, one per line (NDJSON)'
            cand -d 'After the first value, print a diff against the previous value (JSON pretty-printed with sorted keys, so diffs are by line; a unified diff without color)'
            cand --diff 'After the first value, print a diff against the previous value (JSON pretty-printed with sorted keys, so diffs are by line; a unified diff without color)'
            cand --prefix 'Start each line with the resource''s URL, or the NAME of a NAME=URL argument, and a tab, as grep -H does: lines from several resources can be told apart in a pipe'
            cand --no-initial 'Do not emit the initial value; emit changes only'
            cand -v 'Protocol trace on stderr: requests, links found, transport chosen and why, retries, and the proxy connections go through (ALL_PROXY, HTTPS_PROXY, HTTP_PROXY, NO_PROXY)'
            cand --verbose 'Protocol trace on stderr: requests, links found, transport chosen and why, retries, and the proxy connections go through (ALL_PROXY, HTTPS_PROXY, HTTP_PROXY, NO_PROXY)'
            cand -q 'No status or warning lines on stderr (errors are still reported)'
            cand --quiet 'No status or warning lines on stderr (errors are still reported)'
            cand --changes 'Follow the resource''s changes feed instead of its value (the default for a collection: changes links, and no ETag or a value that is a JSON list). Items with ids become child-added, child-changed and child-removed events; other formats a changes event'
            cand --value 'Follow the resource''s value, even when it is a collection with a changes feed'
            cand --insecure 'Do not verify TLS certificates (https, wss). Only for testing: anyone on the path can then read and change what is followed. lrwatch warns when it is used'
            cand --reconnect 'Ask a JSON-lines URL again after its response ends, with a backoff (a watch that times out); without it, a response that ends cleanly means that URL is done'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand serve 'Run the reference LiveResource server: every mechanism of the protocol, in all three forms.'
            cand inspect 'Show what a resource offers, and which transport auto would pick and why.'
            cand check 'Probe a server''s LiveResource support, requirement by requirement: PASS, FAIL, WARN or SKIP.'
            cand demo 'Start the reference server in-process on loopback and follow its /time'
            cand completions 'Print a completion script for a shell'
            cand man 'Print the man page (roff)'
        }
        &'lrwatch;serve'= {
            cand --listen 'Address to listen on (port 0 picks a free port; the address is printed on stdout)'
            cand --dialect 'Forms spoken: a, b, c, or mixed (all three at once)'
            cand --lossy 'Drop every Nth push on unreliable streams and sockets, so clients must recover'
            cand --cut-after 'Cut every stream and socket SECS seconds after it opens (a simulated disconnect)'
            cand --history 'Collection changes remembered; older checkpoints expire (404)'
            cand --keepalive 'Seconds between keep-alive comments (streams) and pings (sockets) when idle'
            cand --fault 'Commit a deliberate protocol fault, repeatable, to see a checker catch it: wait-now (answer long-polls at once), no-subprotocol (no liveresource in the WebSocket handshake), wrong-content-type (event streams as text/plain), stale-changes (the changes link does not advance), unstable-etag (a new ETag text on every GET), no-304 (ignore If-None-Match), accept-bad-wait (no 400 for a malformed wait: allowed, so check passes it)'
            cand --cors 'Which origins'' pages may read the answers: * (any), one origin such as http://localhost:3000, or off (no CORS headers: only pages of this server''s origin). Every answer then carries Access-Control-Allow-Origin and exposes the protocol''s headers (ETag, Link, ...) to scripts; preflights are answered for a day'
            cand -v 'Log on stderr, for debugging a client: one line per request (time, peer, method, target, the protocol headers, status, how long it was held; a request refused before routing, such as a malformed one, with what could be read of it and why), one per push on a stream, per WebSocket message in or out and per webhook delivery. Without it, only start-up and errors'
            cand --verbose 'Log on stderr, for debugging a client: one line per request (time, peer, method, target, the protocol headers, status, how long it was held; a request refused before routing, such as a malformed one, with what could be read of it and why), one per push on a stream, per WebSocket message in or out and per webhook delivery. Without it, only start-up and errors'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'lrwatch;inspect'= {
            cand -H 'Extra request header "NAME: VALUE", repeatable; sent only to the resource''s own origin'
            cand --header 'Extra request header "NAME: VALUE", repeatable; sent only to the resource''s own origin'
            cand --cacert 'Trust the certificate authorities in this PEM file for https and wss, instead of the bundled Mozilla roots (as curl''s --cacert does)'
            cand --color 'When to use color: auto (a terminal, NO_COLOR unset, TERM not dumb), always, never'
            cand --max-header 'The largest response head (status line and headers) accepted, in bytes (K, M suffixes), as when following'
            cand -j 'Print one JSON document instead of the readable report'
            cand --json 'Print one JSON document instead of the readable report'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'lrwatch;check'= {
            cand -H 'Extra request header "NAME: VALUE", repeatable; sent only to the resource''s own origin'
            cand --header 'Extra request header "NAME: VALUE", repeatable; sent only to the resource''s own origin'
            cand --cacert 'Trust the certificate authorities in this PEM file for https and wss, instead of the bundled Mozilla roots (as curl''s --cacert does)'
            cand --color 'When to use color: auto (a terminal, NO_COLOR unset, TERM not dumb), always, never'
            cand --trigger 'A shell command (run with sh -c) that changes the resource, e.g. a curl POST; without it, the checks that need a change are SKIP'
            cand --budget 'The most time the whole run may take, in seconds'
            cand --wait 'The wait of the long-polls that check holding, in seconds (at least the server''s minimum)'
            cand --callback-listen 'Exercise webhooks: receive their notifications on a listener at ADDR (port 0 picks a free one); without this or --callback-url, webhooks are SKIP'
            cand --callback-url 'The URL the server should POST webhook notifications to, when it must reach another address than the listener''s own (a tunnel, NAT); the listener is --callback-listen, or 127.0.0.1 on a free port'
            cand -j 'Print one JSON document instead of the readable report'
            cand --json 'Print one JSON document instead of the readable report'
            cand --strict 'Exit 1 on a WARN too (a SHOULD broken), not only on a FAIL (a MUST broken)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'lrwatch;demo'= {
            cand -x 'Run CMD with `sh -c` for each event instead of printing it'
            cand --exec 'Run CMD with `sh -c` for each event instead of printing it'
            cand --select 'Follow only the part of a JSON value at this JSON Pointer (RFC 6901), e.g. /items/0; an event is emitted only when that part changes'
            cand -n 'Exit 0 after N events (the initial value counts)'
            cand --count 'Exit 0 after N events (the initial value counts)'
            cand --color 'When to use color: auto (a terminal, NO_COLOR unset, TERM not dumb), always, never'
            cand -t 'Give up after SECS seconds and exit 124; a running --exec command is stopped'
            cand --timeout 'Give up after SECS seconds and exit 124; a running --exec command is stopped'
            cand --urls 'Read more URLs to follow from FILE (- for standard input): one URL or NAME=URL a line; blank lines and lines starting with # are skipped. Followed with those on the command line; a bad line is a usage error naming the line'
            cand -H 'Extra request header "NAME: VALUE", repeatable; sent only to the resource''s own origin'
            cand --header 'Extra request header "NAME: VALUE", repeatable; sent only to the resource''s own origin'
            cand --verify 'On push and long-poll transports, a conditional GET of each resource every SECS (fractions allowed; 0 turns it off), so that a server that silently forgot a subscription is noticed: the change is reported, a warning says the server missed a push, and the transport is resubscribed'
            cand --callback-listen 'Receive webhook notifications on a local listener at ADDR [default: 127.0.0.1 on a free port]; lets auto use value-callback / changes-callback'
            cand --callback-url 'The URL servers should POST webhook notifications to, when it is not the listener''s own (behind a tunnel or NAT); lets auto use callbacks. Every subscription is deleted when lrwatch exits, however it exits'
            cand --max-body 'The largest response body, event-stream event or socket message accepted, in bytes (K, M, G suffixes: KiB, MiB, GiB), at most 4G. Over it, following that resource stops with exit 1'
            cand --max-header 'The largest response head (status line and headers) accepted, in bytes (K, M suffixes), at most 100M. Each open connection holds a buffer this large'
            cand --cacert 'Trust the certificate authorities in this PEM file for https and wss, instead of the bundled Mozilla roots (as curl''s --cacert does)'
            cand --transport 'Transport: auto (the best one offered), or force one; forcing one that the resource does not advertise is an error naming what it does advertise'
            cand --wait 'The wait for long-polls, in seconds (sent as `Wait` and `Prefer: wait=`)'
            cand --interval 'Plain-polling period in seconds, fractions allowed [default: the server''s X-Poll-Interval, else 5]'
            cand --subprotocol 'For ws:// and wss:// URLs: offer this subprotocol in the handshake'
            cand --send 'For ws:// and wss:// URLs: send TEXT as a text message after each connect, repeatable, in order (nothing is sent otherwise)'
            cand -j 'One JSON envelope per event, one per line (NDJSON)'
            cand --json 'One JSON envelope per event, one per line (NDJSON)'
            cand -d 'After the first value, print a diff against the previous value (JSON pretty-printed with sorted keys, so diffs are by line; a unified diff without color)'
            cand --diff 'After the first value, print a diff against the previous value (JSON pretty-printed with sorted keys, so diffs are by line; a unified diff without color)'
            cand --prefix 'Start each line with the resource''s URL, or the NAME of a NAME=URL argument, and a tab, as grep -H does: lines from several resources can be told apart in a pipe'
            cand --no-initial 'Do not emit the initial value; emit changes only'
            cand -v 'Protocol trace on stderr: requests, links found, transport chosen and why, retries, and the proxy connections go through (ALL_PROXY, HTTPS_PROXY, HTTP_PROXY, NO_PROXY)'
            cand --verbose 'Protocol trace on stderr: requests, links found, transport chosen and why, retries, and the proxy connections go through (ALL_PROXY, HTTPS_PROXY, HTTP_PROXY, NO_PROXY)'
            cand -q 'No status or warning lines on stderr (errors are still reported)'
            cand --quiet 'No status or warning lines on stderr (errors are still reported)'
            cand --changes 'Follow the resource''s changes feed instead of its value (the default for a collection: changes links, and no ETag or a value that is a JSON list). Items with ids become child-added, child-changed and child-removed events; other formats a changes event'
            cand --value 'Follow the resource''s value, even when it is a collection with a changes feed'
            cand --insecure 'Do not verify TLS certificates (https, wss). Only for testing: anyone on the path can then read and change what is followed. lrwatch warns when it is used'
            cand --reconnect 'Ask a JSON-lines URL again after its response ends, with a backoff (a watch that times out); without it, a response that ends cleanly means that URL is done'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'lrwatch;completions'= {
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'lrwatch;man'= {
            cand -h 'Print help'
            cand --help 'Print help'
        }
    ]
    $completions[$command]
}
