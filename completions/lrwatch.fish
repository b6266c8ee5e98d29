# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_lrwatch_global_optspecs
    string join \n j/json d/diff x/exec= prefix select= n/count= no-initial color= v/verbose q/quiet t/timeout= urls= H/header= changes value verify= callback-listen= callback-url= insecure max-body= max-header= cacert= transport= wait= interval= reconnect subprotocol= send= h/help V/version
end

function __fish_lrwatch_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_lrwatch_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_lrwatch_using_subcommand
    set -l cmd (__fish_lrwatch_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c lrwatch -n "__fish_lrwatch_needs_command" -s x -l exec -d 'Run CMD with `sh -c` for each event instead of printing it' -r
complete -c lrwatch -n "__fish_lrwatch_needs_command" -l select -d 'Follow only the part of a JSON value at this JSON Pointer (RFC 6901), e.g. /items/0; an event is emitted only when that part changes' -r
complete -c lrwatch -n "__fish_lrwatch_needs_command" -s n -l count -d 'Exit 0 after N events (the initial value counts)' -r
complete -c lrwatch -n "__fish_lrwatch_needs_command" -l color -d 'When to use color: auto (a terminal, NO_COLOR unset, TERM not dumb), always, never' -r -f -a "auto\t'Color on a terminal, unless NO_COLOR is set or TERM is dumb'
always\t'Always color'
never\t'Never color'"
complete -c lrwatch -n "__fish_lrwatch_needs_command" -s t -l timeout -d 'Give up after SECS seconds and exit 124; a running --exec command is stopped' -r
complete -c lrwatch -n "__fish_lrwatch_needs_command" -l urls -d 'Read more URLs to follow from FILE (- for standard input): one URL or NAME=URL a line; blank lines and lines starting with # are skipped. Followed with those on the command line; a bad line is a usage error naming the line' -r -F
complete -c lrwatch -n "__fish_lrwatch_needs_command" -s H -l header -d 'Extra request header "NAME: VALUE", repeatable; sent only to the resource\'s own origin' -r
complete -c lrwatch -n "__fish_lrwatch_needs_command" -l verify -d 'On push and long-poll transports, a conditional GET of each resource every SECS (fractions allowed; 0 turns it off), so that a server that silently forgot a subscription is noticed: the change is reported, a warning says the server missed a push, and the transport is resubscribed' -r
complete -c lrwatch -n "__fish_lrwatch_needs_command" -l callback-listen -d 'Receive webhook notifications on a local listener at ADDR [default: 127.0.0.1 on a free port]; lets auto use value-callback / changes-callback' -r
complete -c lrwatch -n "__fish_lrwatch_needs_command" -l callback-url -d 'The URL servers should POST webhook notifications to, when it is not the listener\'s own (behind a tunnel or NAT); lets auto use callbacks. Every subscription is deleted when lrwatch exits, however it exits' -r
complete -c lrwatch -n "__fish_lrwatch_needs_command" -l max-body -d 'The largest response body, event-stream event or socket message accepted, in bytes (K, M, G suffixes: KiB, MiB, GiB), at most 4G. Over it, following that resource stops with exit 1' -r
complete -c lrwatch -n "__fish_lrwatch_needs_command" -l max-header -d 'The largest response head (status line and headers) accepted, in bytes (K, M suffixes), at most 100M. Each open connection holds a buffer this large' -r
complete -c lrwatch -n "__fish_lrwatch_needs_command" -l cacert -d 'Trust the certificate authorities in this PEM file for https and wss, instead of the bundled Mozilla roots (as curl\'s --cacert does)' -r -F
complete -c lrwatch -n "__fish_lrwatch_needs_command" -l transport -d 'Transport: auto (the best one offered), or force one; forcing one that the resource does not advertise is an error naming what it does advertise' -r -f -a "auto\t''
poll\t''
value-wait\t''
value-stream\t''
hint-stream\t''
multiplex-wait\t''
multiplex-stream\t''
multiplex-ws\t''
multiplex-socket\t''
value-callback\t''
changes\t''
changes-wait\t''
changes-stream\t''
changes-callback\t''"
complete -c lrwatch -n "__fish_lrwatch_needs_command" -l wait -d 'The wait for long-polls, in seconds (sent as `Wait` and `Prefer: wait=`)' -r
complete -c lrwatch -n "__fish_lrwatch_needs_command" -l interval -d 'Plain-polling period in seconds, fractions allowed [default: the server\'s X-Poll-Interval, else 5]' -r
complete -c lrwatch -n "__fish_lrwatch_needs_command" -l subprotocol -d 'For ws:// and wss:// URLs: offer this subprotocol in the handshake' -r
complete -c lrwatch -n "__fish_lrwatch_needs_command" -l send -d 'For ws:// and wss:// URLs: send TEXT as a text message after each connect, repeatable, in order (nothing is sent otherwise)' -r
complete -c lrwatch -n "__fish_lrwatch_needs_command" -s j -l json -d 'One JSON envelope per event, one per line (NDJSON)'
complete -c lrwatch -n "__fish_lrwatch_needs_command" -s d -l diff -d 'After the first value, print a diff against the previous value (JSON pretty-printed with sorted keys, so diffs are by line; a unified diff without color)'
complete -c lrwatch -n "__fish_lrwatch_needs_command" -l prefix -d 'Start each line with the resource\'s URL, or the NAME of a NAME=URL argument, and a tab, as grep -H does: lines from several resources can be told apart in a pipe'
complete -c lrwatch -n "__fish_lrwatch_needs_command" -l no-initial -d 'Do not emit the initial value; emit changes only'
complete -c lrwatch -n "__fish_lrwatch_needs_command" -s v -l verbose -d 'Protocol trace on stderr: requests, links found, transport chosen and why, retries, and the proxy connections go through (ALL_PROXY, HTTPS_PROXY, HTTP_PROXY, NO_PROXY)'
complete -c lrwatch -n "__fish_lrwatch_needs_command" -s q -l quiet -d 'No status or warning lines on stderr (errors are still reported)'
complete -c lrwatch -n "__fish_lrwatch_needs_command" -l changes -d 'Follow the resource\'s changes feed instead of its value (the default for a collection: changes links, and no ETag or a value that is a JSON list). Items with ids become child-added, child-changed and child-removed events; other formats a changes event'
complete -c lrwatch -n "__fish_lrwatch_needs_command" -l value -d 'Follow the resource\'s value, even when it is a collection with a changes feed'
complete -c lrwatch -n "__fish_lrwatch_needs_command" -l insecure -d 'Do not verify TLS certificates (https, wss). Only for testing: anyone on the path can then read and change what is followed. lrwatch warns when it is used'
complete -c lrwatch -n "__fish_lrwatch_needs_command" -l reconnect -d 'Ask a JSON-lines URL again after its response ends, with a backoff (a watch that times out); without it, a response that ends cleanly means that URL is done'
complete -c lrwatch -n "__fish_lrwatch_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lrwatch -n "__fish_lrwatch_needs_command" -s V -l version -d 'Print version'
complete -c lrwatch -n "__fish_lrwatch_needs_command" -a "serve" -d 'Run the reference LiveResource server: every mechanism of the protocol, in all three forms.'
complete -c lrwatch -n "__fish_lrwatch_needs_command" -a "inspect" -d 'Show what a resource offers, and which transport auto would pick and why.'
complete -c lrwatch -n "__fish_lrwatch_needs_command" -a "check" -d 'Probe a server\'s LiveResource support, requirement by requirement: PASS, FAIL, WARN or SKIP.'
complete -c lrwatch -n "__fish_lrwatch_needs_command" -a "demo" -d 'Start the reference server in-process on loopback and follow its /time'
complete -c lrwatch -n "__fish_lrwatch_needs_command" -a "completions" -d 'Print a completion script for a shell'
complete -c lrwatch -n "__fish_lrwatch_needs_command" -a "man" -d 'Print the man page (roff)'
complete -c lrwatch -n "__fish_lrwatch_using_subcommand serve" -l listen -d 'Address to listen on (port 0 picks a free port; the address is printed on stdout)' -r
complete -c lrwatch -n "__fish_lrwatch_using_subcommand serve" -l dialect -d 'Forms spoken: a, b, c, or mixed (all three at once)' -r
complete -c lrwatch -n "__fish_lrwatch_using_subcommand serve" -l lossy -d 'Drop every Nth push on unreliable streams and sockets, so clients must recover' -r
complete -c lrwatch -n "__fish_lrwatch_using_subcommand serve" -l cut-after -d 'Cut every stream and socket SECS seconds after it opens (a simulated disconnect)' -r
complete -c lrwatch -n "__fish_lrwatch_using_subcommand serve" -l history -d 'Collection changes remembered; older checkpoints expire (404)' -r
complete -c lrwatch -n "__fish_lrwatch_using_subcommand serve" -l keepalive -d 'Seconds between keep-alive comments (streams) and pings (sockets) when idle' -r
complete -c lrwatch -n "__fish_lrwatch_using_subcommand serve" -l fault -d 'Commit a deliberate protocol fault, repeatable, to see a checker catch it: wait-now (answer long-polls at once), no-subprotocol (no liveresource in the WebSocket handshake), wrong-content-type (event streams as text/plain), stale-changes (the changes link does not advance), unstable-etag (a new ETag text on every GET), no-304 (ignore If-None-Match), accept-bad-wait (no 400 for a malformed wait: allowed, so check passes it)' -r
complete -c lrwatch -n "__fish_lrwatch_using_subcommand serve" -l cors -d 'Which origins\' pages may read the answers: * (any), one origin such as http://localhost:3000, or off (no CORS headers: only pages of this server\'s origin). Every answer then carries Access-Control-Allow-Origin and exposes the protocol\'s headers (ETag, Link, ...) to scripts; preflights are answered for a day' -r
complete -c lrwatch -n "__fish_lrwatch_using_subcommand serve" -s v -l verbose -d 'Log on stderr, for debugging a client: one line per request (time, peer, method, target, the protocol headers, status, how long it was held; a request refused before routing, such as a malformed one, with what could be read of it and why), one per push on a stream, per WebSocket message in or out and per webhook delivery. Without it, only start-up and errors'
complete -c lrwatch -n "__fish_lrwatch_using_subcommand serve" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lrwatch -n "__fish_lrwatch_using_subcommand inspect" -s H -l header -d 'Extra request header "NAME: VALUE", repeatable; sent only to the resource\'s own origin' -r
complete -c lrwatch -n "__fish_lrwatch_using_subcommand inspect" -l cacert -d 'Trust the certificate authorities in this PEM file for https and wss, instead of the bundled Mozilla roots (as curl\'s --cacert does)' -r -F
complete -c lrwatch -n "__fish_lrwatch_using_subcommand inspect" -l color -d 'When to use color: auto (a terminal, NO_COLOR unset, TERM not dumb), always, never' -r -f -a "auto\t'Color on a terminal, unless NO_COLOR is set or TERM is dumb'
always\t'Always color'
never\t'Never color'"
complete -c lrwatch -n "__fish_lrwatch_using_subcommand inspect" -l max-header -d 'The largest response head (status line and headers) accepted, in bytes (K, M suffixes), as when following' -r
complete -c lrwatch -n "__fish_lrwatch_using_subcommand inspect" -s j -l json -d 'Print one JSON document instead of the readable report'
complete -c lrwatch -n "__fish_lrwatch_using_subcommand inspect" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lrwatch -n "__fish_lrwatch_using_subcommand check" -s H -l header -d 'Extra request header "NAME: VALUE", repeatable; sent only to the resource\'s own origin' -r
complete -c lrwatch -n "__fish_lrwatch_using_subcommand check" -l cacert -d 'Trust the certificate authorities in this PEM file for https and wss, instead of the bundled Mozilla roots (as curl\'s --cacert does)' -r -F
complete -c lrwatch -n "__fish_lrwatch_using_subcommand check" -l color -d 'When to use color: auto (a terminal, NO_COLOR unset, TERM not dumb), always, never' -r -f -a "auto\t'Color on a terminal, unless NO_COLOR is set or TERM is dumb'
always\t'Always color'
never\t'Never color'"
complete -c lrwatch -n "__fish_lrwatch_using_subcommand check" -l trigger -d 'A shell command (run with sh -c) that changes the resource, e.g. a curl POST; without it, the checks that need a change are SKIP' -r
complete -c lrwatch -n "__fish_lrwatch_using_subcommand check" -l budget -d 'The most time the whole run may take, in seconds' -r
complete -c lrwatch -n "__fish_lrwatch_using_subcommand check" -l wait -d 'The wait of the long-polls that check holding, in seconds (at least the server\'s minimum)' -r
complete -c lrwatch -n "__fish_lrwatch_using_subcommand check" -l callback-listen -d 'Exercise webhooks: receive their notifications on a listener at ADDR (port 0 picks a free one); without this or --callback-url, webhooks are SKIP' -r
complete -c lrwatch -n "__fish_lrwatch_using_subcommand check" -l callback-url -d 'The URL the server should POST webhook notifications to, when it must reach another address than the listener\'s own (a tunnel, NAT); the listener is --callback-listen, or 127.0.0.1 on a free port' -r
complete -c lrwatch -n "__fish_lrwatch_using_subcommand check" -s j -l json -d 'Print one JSON document instead of the readable report'
complete -c lrwatch -n "__fish_lrwatch_using_subcommand check" -l strict -d 'Exit 1 on a WARN too (a SHOULD broken), not only on a FAIL (a MUST broken)'
complete -c lrwatch -n "__fish_lrwatch_using_subcommand check" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lrwatch -n "__fish_lrwatch_using_subcommand demo" -s x -l exec -d 'Run CMD with `sh -c` for each event instead of printing it' -r
complete -c lrwatch -n "__fish_lrwatch_using_subcommand demo" -l select -d 'Follow only the part of a JSON value at this JSON Pointer (RFC 6901), e.g. /items/0; an event is emitted only when that part changes' -r
complete -c lrwatch -n "__fish_lrwatch_using_subcommand demo" -s n -l count -d 'Exit 0 after N events (the initial value counts)' -r
complete -c lrwatch -n "__fish_lrwatch_using_subcommand demo" -l color -d 'When to use color: auto (a terminal, NO_COLOR unset, TERM not dumb), always, never' -r -f -a "auto\t'Color on a terminal, unless NO_COLOR is set or TERM is dumb'
always\t'Always color'
never\t'Never color'"
complete -c lrwatch -n "__fish_lrwatch_using_subcommand demo" -s t -l timeout -d 'Give up after SECS seconds and exit 124; a running --exec command is stopped' -r
complete -c lrwatch -n "__fish_lrwatch_using_subcommand demo" -l urls -d 'Read more URLs to follow from FILE (- for standard input): one URL or NAME=URL a line; blank lines and lines starting with # are skipped. Followed with those on the command line; a bad line is a usage error naming the line' -r -F
complete -c lrwatch -n "__fish_lrwatch_using_subcommand demo" -s H -l header -d 'Extra request header "NAME: VALUE", repeatable; sent only to the resource\'s own origin' -r
complete -c lrwatch -n "__fish_lrwatch_using_subcommand demo" -l verify -d 'On push and long-poll transports, a conditional GET of each resource every SECS (fractions allowed; 0 turns it off), so that a server that silently forgot a subscription is noticed: the change is reported, a warning says the server missed a push, and the transport is resubscribed' -r
complete -c lrwatch -n "__fish_lrwatch_using_subcommand demo" -l callback-listen -d 'Receive webhook notifications on a local listener at ADDR [default: 127.0.0.1 on a free port]; lets auto use value-callback / changes-callback' -r
complete -c lrwatch -n "__fish_lrwatch_using_subcommand demo" -l callback-url -d 'The URL servers should POST webhook notifications to, when it is not the listener\'s own (behind a tunnel or NAT); lets auto use callbacks. Every subscription is deleted when lrwatch exits, however it exits' -r
complete -c lrwatch -n "__fish_lrwatch_using_subcommand demo" -l max-body -d 'The largest response body, event-stream event or socket message accepted, in bytes (K, M, G suffixes: KiB, MiB, GiB), at most 4G. Over it, following that resource stops with exit 1' -r
complete -c lrwatch -n "__fish_lrwatch_using_subcommand demo" -l max-header -d 'The largest response head (status line and headers) accepted, in bytes (K, M suffixes), at most 100M. Each open connection holds a buffer this large' -r
complete -c lrwatch -n "__fish_lrwatch_using_subcommand demo" -l cacert -d 'Trust the certificate authorities in this PEM file for https and wss, instead of the bundled Mozilla roots (as curl\'s --cacert does)' -r -F
complete -c lrwatch -n "__fish_lrwatch_using_subcommand demo" -l transport -d 'Transport: auto (the best one offered), or force one; forcing one that the resource does not advertise is an error naming what it does advertise' -r -f -a "auto\t''
poll\t''
value-wait\t''
value-stream\t''
hint-stream\t''
multiplex-wait\t''
multiplex-stream\t''
multiplex-ws\t''
multiplex-socket\t''
value-callback\t''
changes\t''
changes-wait\t''
changes-stream\t''
changes-callback\t''"
complete -c lrwatch -n "__fish_lrwatch_using_subcommand demo" -l wait -d 'The wait for long-polls, in seconds (sent as `Wait` and `Prefer: wait=`)' -r
complete -c lrwatch -n "__fish_lrwatch_using_subcommand demo" -l interval -d 'Plain-polling period in seconds, fractions allowed [default: the server\'s X-Poll-Interval, else 5]' -r
complete -c lrwatch -n "__fish_lrwatch_using_subcommand demo" -l subprotocol -d 'For ws:// and wss:// URLs: offer this subprotocol in the handshake' -r
complete -c lrwatch -n "__fish_lrwatch_using_subcommand demo" -l send -d 'For ws:// and wss:// URLs: send TEXT as a text message after each connect, repeatable, in order (nothing is sent otherwise)' -r
complete -c lrwatch -n "__fish_lrwatch_using_subcommand demo" -s j -l json -d 'One JSON envelope per event, one per line (NDJSON)'
complete -c lrwatch -n "__fish_lrwatch_using_subcommand demo" -s d -l diff -d 'After the first value, print a diff against the previous value (JSON pretty-printed with sorted keys, so diffs are by line; a unified diff without color)'
complete -c lrwatch -n "__fish_lrwatch_using_subcommand demo" -l prefix -d 'Start each line with the resource\'s URL, or the NAME of a NAME=URL argument, and a tab, as grep -H does: lines from several resources can be told apart in a pipe'
complete -c lrwatch -n "__fish_lrwatch_using_subcommand demo" -l no-initial -d 'Do not emit the initial value; emit changes only'
complete -c lrwatch -n "__fish_lrwatch_using_subcommand demo" -s v -l verbose -d 'Protocol trace on stderr: requests, links found, transport chosen and why, retries, and the proxy connections go through (ALL_PROXY, HTTPS_PROXY, HTTP_PROXY, NO_PROXY)'
complete -c lrwatch -n "__fish_lrwatch_using_subcommand demo" -s q -l quiet -d 'No status or warning lines on stderr (errors are still reported)'
complete -c lrwatch -n "__fish_lrwatch_using_subcommand demo" -l changes -d 'Follow the resource\'s changes feed instead of its value (the default for a collection: changes links, and no ETag or a value that is a JSON list). Items with ids become child-added, child-changed and child-removed events; other formats a changes event'
complete -c lrwatch -n "__fish_lrwatch_using_subcommand demo" -l value -d 'Follow the resource\'s value, even when it is a collection with a changes feed'
complete -c lrwatch -n "__fish_lrwatch_using_subcommand demo" -l insecure -d 'Do not verify TLS certificates (https, wss). Only for testing: anyone on the path can then read and change what is followed. lrwatch warns when it is used'
complete -c lrwatch -n "__fish_lrwatch_using_subcommand demo" -l reconnect -d 'Ask a JSON-lines URL again after its response ends, with a backoff (a watch that times out); without it, a response that ends cleanly means that URL is done'
complete -c lrwatch -n "__fish_lrwatch_using_subcommand demo" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lrwatch -n "__fish_lrwatch_using_subcommand completions" -s h -l help -d 'Print help'
complete -c lrwatch -n "__fish_lrwatch_using_subcommand man" -s h -l help -d 'Print help'
