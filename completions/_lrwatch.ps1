
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'lrwatch' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'lrwatch'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'lrwatch' {
            [CompletionResult]::new('-x', '-x', [CompletionResultType]::ParameterName, 'Run CMD with `sh -c` for each event instead of printing it')
            [CompletionResult]::new('--exec', '--exec', [CompletionResultType]::ParameterName, 'Run CMD with `sh -c` for each event instead of printing it')
            [CompletionResult]::new('--select', '--select', [CompletionResultType]::ParameterName, 'Follow only the part of a JSON value at this JSON Pointer (RFC 6901), e.g. /items/0; an event is emitted only when that part changes')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Exit 0 after N events (the initial value counts)')
            [CompletionResult]::new('--count', '--count', [CompletionResultType]::ParameterName, 'Exit 0 after N events (the initial value counts)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use color: auto (a terminal, NO_COLOR unset, TERM not dumb), always, never')
            [CompletionResult]::new('-t', '-t', [CompletionResultType]::ParameterName, 'Give up after SECS seconds and exit 124; a running --exec command is stopped')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Give up after SECS seconds and exit 124; a running --exec command is stopped')
            [CompletionResult]::new('--urls', '--urls', [CompletionResultType]::ParameterName, 'Read more URLs to follow from FILE (- for standard input): one URL or NAME=URL a line; blank lines and lines starting with # are skipped. Followed with those on the command line; a bad line is a usage error naming the line')
            [CompletionResult]::new('-H', '-H ', [CompletionResultType]::ParameterName, 'Extra request header "NAME: VALUE", repeatable; sent only to the resource''s own origin')
            [CompletionResult]::new('--header', '--header', [CompletionResultType]::ParameterName, 'Extra request header "NAME: VALUE", repeatable; sent only to the resource''s own origin')
            [CompletionResult]::new('--verify', '--verify', [CompletionResultType]::ParameterName, 'On push and long-poll transports, a conditional GET of each resource every SECS (fractions allowed; 0 turns it off), so that a server that silently forgot a subscription is noticed: the change is reported, a warning says the server missed a push, and the transport is resubscribed')
            [CompletionResult]::new('--callback-listen', '--callback-listen', [CompletionResultType]::ParameterName, 'Receive webhook notifications on a local listener at ADDR [default: 127.0.0.1 on a free port]; lets auto use value-callback / changes-callback')
            [CompletionResult]::new('--callback-url', '--callback-url', [CompletionResultType]::ParameterName, 'The URL servers should POST webhook notifications to, when it is not the listener''s own (behind a tunnel or NAT); lets auto use callbacks. Every subscription is deleted when lrwatch exits, however it exits')
            [CompletionResult]::new('--max-body', '--max-body', [CompletionResultType]::ParameterName, 'The largest response body, event-stream event or socket message accepted, in bytes (K, M, G suffixes: KiB, MiB, GiB), at most 4G. Over it, following that resource stops with exit 1')
            [CompletionResult]::new('--max-header', '--max-header', [CompletionResultType]::ParameterName, 'The largest response head (status line and headers) accepted, in bytes (K, M suffixes), at most 100M. Each open connection holds a buffer this large')
            [CompletionResult]::new('--cacert', '--cacert', [CompletionResultType]::ParameterName, 'Trust the certificate authorities in this PEM file for https and wss, instead of the bundled Mozilla roots (as curl''s --cacert does)')
            [CompletionResult]::new('--transport', '--transport', [CompletionResultType]::ParameterName, 'Transport: auto (the best one offered), or force one; forcing one that the resource does not advertise is an error naming what it does advertise')
            [CompletionResult]::new('--wait', '--wait', [CompletionResultType]::ParameterName, 'The wait for long-polls, in seconds (sent as `Wait` and `Prefer: wait=`)')
            [CompletionResult]::new('--interval', '--interval', [CompletionResultType]::ParameterName, 'Plain-polling period in seconds, fractions allowed [default: the server''s X-Poll-Interval, else 5]')
            [CompletionResult]::new('--subprotocol', '--subprotocol', [CompletionResultType]::ParameterName, 'For ws:// and wss:// URLs: offer this subprotocol in the handshake')
            [CompletionResult]::new('--send', '--send', [CompletionResultType]::ParameterName, 'For ws:// and wss:// URLs: send TEXT as a text message after each connect, repeatable, in order (nothing is sent otherwise)')
            [CompletionResult]::new('-j', '-j', [CompletionResultType]::ParameterName, 'One JSON envelope per event, one per line (NDJSON)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'One JSON envelope per event, one per line (NDJSON)')
            [CompletionResult]::new('-d', '-d', [CompletionResultType]::ParameterName, 'After the first value, print a diff against the previous value (JSON pretty-printed with sorted keys, so diffs are by line; a unified diff without color)')
            [CompletionResult]::new('--diff', '--diff', [CompletionResultType]::ParameterName, 'After the first value, print a diff against the previous value (JSON pretty-printed with sorted keys, so diffs are by line; a unified diff without color)')
            [CompletionResult]::new('--prefix', '--prefix', [CompletionResultType]::ParameterName, 'Start each line with the resource''s URL, or the NAME of a NAME=URL argument, and a tab, as grep -H does: lines from several resources can be told apart in a pipe')
            [CompletionResult]::new('--no-initial', '--no-initial', [CompletionResultType]::ParameterName, 'Do not emit the initial value; emit changes only')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Protocol trace on stderr: requests, links found, transport chosen and why, retries, and the proxy connections go through (ALL_PROXY, HTTPS_PROXY, HTTP_PROXY, NO_PROXY)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Protocol trace on stderr: requests, links found, transport chosen and why, retries, and the proxy connections go through (ALL_PROXY, HTTPS_PROXY, HTTP_PROXY, NO_PROXY)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'No status or warning lines on stderr (errors are still reported)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'No status or warning lines on stderr (errors are still reported)')
            [CompletionResult]::new('--changes', '--changes', [CompletionResultType]::ParameterName, 'Follow the resource''s changes feed instead of its value (the default for a collection: changes links, and no ETag or a value that is a JSON list). Items with ids become child-added, child-changed and child-removed events; other formats a changes event')
            [CompletionResult]::new('--value', '--value', [CompletionResultType]::ParameterName, 'Follow the resource''s value, even when it is a collection with a changes feed')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'Do not verify TLS certificates (https, wss). Only for testing: anyone on the path can then read and change what is followed. lrwatch warns when it is used')
            [CompletionResult]::new('--reconnect', '--reconnect', [CompletionResultType]::ParameterName, 'Ask a JSON-lines URL again after its response ends, with a backoff (a watch that times out); without it, a response that ends cleanly means that URL is done')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Run the reference LiveResource server: every mechanism of the protocol, in all three forms.')
            [CompletionResult]::new('inspect', 'inspect', [CompletionResultType]::ParameterValue, 'Show what a resource offers, and which transport auto would pick and why.')
            [CompletionResult]::new('check', 'check', [CompletionResultType]::ParameterValue, 'Probe a server''s LiveResource support, requirement by requirement: PASS, FAIL, WARN or SKIP.')
            [CompletionResult]::new('demo', 'demo', [CompletionResultType]::ParameterValue, 'Start the reference server in-process on loopback and follow its /time')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a completion script for a shell')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Print the man page (roff)')
            break
        }
        'lrwatch;serve' {
            [CompletionResult]::new('--listen', '--listen', [CompletionResultType]::ParameterName, 'Address to listen on (port 0 picks a free port; the address is printed on stdout)')
            [CompletionResult]::new('--dialect', '--dialect', [CompletionResultType]::ParameterName, 'Forms spoken: a, b, c, or mixed (all three at once)')
            [CompletionResult]::new('--lossy', '--lossy', [CompletionResultType]::ParameterName, 'Drop every Nth push on unreliable streams and sockets, so clients must recover')
            [CompletionResult]::new('--cut-after', '--cut-after', [CompletionResultType]::ParameterName, 'Cut every stream and socket SECS seconds after it opens (a simulated disconnect)')
            [CompletionResult]::new('--history', '--history', [CompletionResultType]::ParameterName, 'Collection changes remembered; older checkpoints expire (404)')
            [CompletionResult]::new('--keepalive', '--keepalive', [CompletionResultType]::ParameterName, 'Seconds between keep-alive comments (streams) and pings (sockets) when idle')
            [CompletionResult]::new('--fault', '--fault', [CompletionResultType]::ParameterName, 'Commit a deliberate protocol fault, repeatable, to see a checker catch it: wait-now (answer long-polls at once), no-subprotocol (no liveresource in the WebSocket handshake), wrong-content-type (event streams as text/plain), stale-changes (the changes link does not advance), unstable-etag (a new ETag text on every GET), no-304 (ignore If-None-Match), accept-bad-wait (no 400 for a malformed wait: allowed, so check passes it)')
            [CompletionResult]::new('--cors', '--cors', [CompletionResultType]::ParameterName, 'Which origins'' pages may read the answers: * (any), one origin such as http://localhost:3000, or off (no CORS headers: only pages of this server''s origin). Every answer then carries Access-Control-Allow-Origin and exposes the protocol''s headers (ETag, Link, ...) to scripts; preflights are answered for a day')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log on stderr, for debugging a client: one line per request (time, peer, method, target, the protocol headers, status, how long it was held; a request refused before routing, such as a malformed one, with what could be read of it and why), one per push on a stream, per WebSocket message in or out and per webhook delivery. Without it, only start-up and errors')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log on stderr, for debugging a client: one line per request (time, peer, method, target, the protocol headers, status, how long it was held; a request refused before routing, such as a malformed one, with what could be read of it and why), one per push on a stream, per WebSocket message in or out and per webhook delivery. Without it, only start-up and errors')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'lrwatch;inspect' {
            [CompletionResult]::new('-H', '-H ', [CompletionResultType]::ParameterName, 'Extra request header "NAME: VALUE", repeatable; sent only to the resource''s own origin')
            [CompletionResult]::new('--header', '--header', [CompletionResultType]::ParameterName, 'Extra request header "NAME: VALUE", repeatable; sent only to the resource''s own origin')
            [CompletionResult]::new('--cacert', '--cacert', [CompletionResultType]::ParameterName, 'Trust the certificate authorities in this PEM file for https and wss, instead of the bundled Mozilla roots (as curl''s --cacert does)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use color: auto (a terminal, NO_COLOR unset, TERM not dumb), always, never')
            [CompletionResult]::new('--max-header', '--max-header', [CompletionResultType]::ParameterName, 'The largest response head (status line and headers) accepted, in bytes (K, M suffixes), as when following')
            [CompletionResult]::new('-j', '-j', [CompletionResultType]::ParameterName, 'Print one JSON document instead of the readable report')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document instead of the readable report')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'lrwatch;check' {
            [CompletionResult]::new('-H', '-H ', [CompletionResultType]::ParameterName, 'Extra request header "NAME: VALUE", repeatable; sent only to the resource''s own origin')
            [CompletionResult]::new('--header', '--header', [CompletionResultType]::ParameterName, 'Extra request header "NAME: VALUE", repeatable; sent only to the resource''s own origin')
            [CompletionResult]::new('--cacert', '--cacert', [CompletionResultType]::ParameterName, 'Trust the certificate authorities in this PEM file for https and wss, instead of the bundled Mozilla roots (as curl''s --cacert does)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use color: auto (a terminal, NO_COLOR unset, TERM not dumb), always, never')
            [CompletionResult]::new('--trigger', '--trigger', [CompletionResultType]::ParameterName, 'A shell command (run with sh -c) that changes the resource, e.g. a curl POST; without it, the checks that need a change are SKIP')
            [CompletionResult]::new('--budget', '--budget', [CompletionResultType]::ParameterName, 'The most time the whole run may take, in seconds')
            [CompletionResult]::new('--wait', '--wait', [CompletionResultType]::ParameterName, 'The wait of the long-polls that check holding, in seconds (at least the server''s minimum)')
            [CompletionResult]::new('--callback-listen', '--callback-listen', [CompletionResultType]::ParameterName, 'Exercise webhooks: receive their notifications on a listener at ADDR (port 0 picks a free one); without this or --callback-url, webhooks are SKIP')
            [CompletionResult]::new('--callback-url', '--callback-url', [CompletionResultType]::ParameterName, 'The URL the server should POST webhook notifications to, when it must reach another address than the listener''s own (a tunnel, NAT); the listener is --callback-listen, or 127.0.0.1 on a free port')
            [CompletionResult]::new('-j', '-j', [CompletionResultType]::ParameterName, 'Print one JSON document instead of the readable report')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document instead of the readable report')
            [CompletionResult]::new('--strict', '--strict', [CompletionResultType]::ParameterName, 'Exit 1 on a WARN too (a SHOULD broken), not only on a FAIL (a MUST broken)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'lrwatch;demo' {
            [CompletionResult]::new('-x', '-x', [CompletionResultType]::ParameterName, 'Run CMD with `sh -c` for each event instead of printing it')
            [CompletionResult]::new('--exec', '--exec', [CompletionResultType]::ParameterName, 'Run CMD with `sh -c` for each event instead of printing it')
            [CompletionResult]::new('--select', '--select', [CompletionResultType]::ParameterName, 'Follow only the part of a JSON value at this JSON Pointer (RFC 6901), e.g. /items/0; an event is emitted only when that part changes')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Exit 0 after N events (the initial value counts)')
            [CompletionResult]::new('--count', '--count', [CompletionResultType]::ParameterName, 'Exit 0 after N events (the initial value counts)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use color: auto (a terminal, NO_COLOR unset, TERM not dumb), always, never')
            [CompletionResult]::new('-t', '-t', [CompletionResultType]::ParameterName, 'Give up after SECS seconds and exit 124; a running --exec command is stopped')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Give up after SECS seconds and exit 124; a running --exec command is stopped')
            [CompletionResult]::new('--urls', '--urls', [CompletionResultType]::ParameterName, 'Read more URLs to follow from FILE (- for standard input): one URL or NAME=URL a line; blank lines and lines starting with # are skipped. Followed with those on the command line; a bad line is a usage error naming the line')
            [CompletionResult]::new('-H', '-H ', [CompletionResultType]::ParameterName, 'Extra request header "NAME: VALUE", repeatable; sent only to the resource''s own origin')
            [CompletionResult]::new('--header', '--header', [CompletionResultType]::ParameterName, 'Extra request header "NAME: VALUE", repeatable; sent only to the resource''s own origin')
            [CompletionResult]::new('--verify', '--verify', [CompletionResultType]::ParameterName, 'On push and long-poll transports, a conditional GET of each resource every SECS (fractions allowed; 0 turns it off), so that a server that silently forgot a subscription is noticed: the change is reported, a warning says the server missed a push, and the transport is resubscribed')
            [CompletionResult]::new('--callback-listen', '--callback-listen', [CompletionResultType]::ParameterName, 'Receive webhook notifications on a local listener at ADDR [default: 127.0.0.1 on a free port]; lets auto use value-callback / changes-callback')
            [CompletionResult]::new('--callback-url', '--callback-url', [CompletionResultType]::ParameterName, 'The URL servers should POST webhook notifications to, when it is not the listener''s own (behind a tunnel or NAT); lets auto use callbacks. Every subscription is deleted when lrwatch exits, however it exits')
            [CompletionResult]::new('--max-body', '--max-body', [CompletionResultType]::ParameterName, 'The largest response body, event-stream event or socket message accepted, in bytes (K, M, G suffixes: KiB, MiB, GiB), at most 4G. Over it, following that resource stops with exit 1')
            [CompletionResult]::new('--max-header', '--max-header', [CompletionResultType]::ParameterName, 'The largest response head (status line and headers) accepted, in bytes (K, M suffixes), at most 100M. Each open connection holds a buffer this large')
            [CompletionResult]::new('--cacert', '--cacert', [CompletionResultType]::ParameterName, 'Trust the certificate authorities in this PEM file for https and wss, instead of the bundled Mozilla roots (as curl''s --cacert does)')
            [CompletionResult]::new('--transport', '--transport', [CompletionResultType]::ParameterName, 'Transport: auto (the best one offered), or force one; forcing one that the resource does not advertise is an error naming what it does advertise')
            [CompletionResult]::new('--wait', '--wait', [CompletionResultType]::ParameterName, 'The wait for long-polls, in seconds (sent as `Wait` and `Prefer: wait=`)')
            [CompletionResult]::new('--interval', '--interval', [CompletionResultType]::ParameterName, 'Plain-polling period in seconds, fractions allowed [default: the server''s X-Poll-Interval, else 5]')
            [CompletionResult]::new('--subprotocol', '--subprotocol', [CompletionResultType]::ParameterName, 'For ws:// and wss:// URLs: offer this subprotocol in the handshake')
            [CompletionResult]::new('--send', '--send', [CompletionResultType]::ParameterName, 'For ws:// and wss:// URLs: send TEXT as a text message after each connect, repeatable, in order (nothing is sent otherwise)')
            [CompletionResult]::new('-j', '-j', [CompletionResultType]::ParameterName, 'One JSON envelope per event, one per line (NDJSON)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'One JSON envelope per event, one per line (NDJSON)')
            [CompletionResult]::new('-d', '-d', [CompletionResultType]::ParameterName, 'After the first value, print a diff against the previous value (JSON pretty-printed with sorted keys, so diffs are by line; a unified diff without color)')
            [CompletionResult]::new('--diff', '--diff', [CompletionResultType]::ParameterName, 'After the first value, print a diff against the previous value (JSON pretty-printed with sorted keys, so diffs are by line; a unified diff without color)')
            [CompletionResult]::new('--prefix', '--prefix', [CompletionResultType]::ParameterName, 'Start each line with the resource''s URL, or the NAME of a NAME=URL argument, and a tab, as grep -H does: lines from several resources can be told apart in a pipe')
            [CompletionResult]::new('--no-initial', '--no-initial', [CompletionResultType]::ParameterName, 'Do not emit the initial value; emit changes only')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Protocol trace on stderr: requests, links found, transport chosen and why, retries, and the proxy connections go through (ALL_PROXY, HTTPS_PROXY, HTTP_PROXY, NO_PROXY)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Protocol trace on stderr: requests, links found, transport chosen and why, retries, and the proxy connections go through (ALL_PROXY, HTTPS_PROXY, HTTP_PROXY, NO_PROXY)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'No status or warning lines on stderr (errors are still reported)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'No status or warning lines on stderr (errors are still reported)')
            [CompletionResult]::new('--changes', '--changes', [CompletionResultType]::ParameterName, 'Follow the resource''s changes feed instead of its value (the default for a collection: changes links, and no ETag or a value that is a JSON list). Items with ids become child-added, child-changed and child-removed events; other formats a changes event')
            [CompletionResult]::new('--value', '--value', [CompletionResultType]::ParameterName, 'Follow the resource''s value, even when it is a collection with a changes feed')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'Do not verify TLS certificates (https, wss). Only for testing: anyone on the path can then read and change what is followed. lrwatch warns when it is used')
            [CompletionResult]::new('--reconnect', '--reconnect', [CompletionResultType]::ParameterName, 'Ask a JSON-lines URL again after its response ends, with a backoff (a watch that times out); without it, a response that ends cleanly means that URL is done')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'lrwatch;completions' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'lrwatch;man' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
