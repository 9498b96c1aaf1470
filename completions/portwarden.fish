# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_portwarden_global_optspecs
    string join \n config= state-dir= v/verbose q/quiet log-format= h/help V/version
end

function __fish_portwarden_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_portwarden_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_portwarden_using_subcommand
    set -l cmd (__fish_portwarden_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c portwarden -n "__fish_portwarden_needs_command" -l config -d 'Config file (default: $PORTWARDEN_CONFIG, else /etc/portwarden/portwarden.toml if it exists)' -r -F
complete -c portwarden -n "__fish_portwarden_needs_command" -l state-dir -d 'State directory (default: $PORTWARDEN_STATE_DIR, else the config\'s state_dir)' -r -F
complete -c portwarden -n "__fish_portwarden_needs_command" -l log-format -d 'Log messages as text (coloured only on a terminal) or as JSON lines' -r -f -a "text\t'One line per message; colours only when standard error is a terminal and NO_COLOR is unset'
json\t'One JSON object per message (timestamp, level, fields, target), never coloured'"
complete -c portwarden -n "__fish_portwarden_needs_command" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides'
complete -c portwarden -n "__fish_portwarden_needs_command" -s q -l quiet -d 'Only errors'
complete -c portwarden -n "__fish_portwarden_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c portwarden -n "__fish_portwarden_needs_command" -s V -l version -d 'Print version'
complete -c portwarden -n "__fish_portwarden_needs_command" -f -a "scan" -d 'Read log files offline and report scanners; bans nothing'
complete -c portwarden -n "__fish_portwarden_needs_command" -f -a "setup" -d 'Create or refresh the nftables table, sets, LOG and drop rules'
complete -c portwarden -n "__fish_portwarden_needs_command" -f -a "teardown" -d 'Remove portwarden\'s nftables table and nothing else'
complete -c portwarden -n "__fish_portwarden_needs_command" -f -a "ban" -d 'Ban an address or prefix by hand'
complete -c portwarden -n "__fish_portwarden_needs_command" -f -a "unban" -d 'Lift a ban'
complete -c portwarden -n "__fish_portwarden_needs_command" -f -a "import" -d 'Import the seed lab\'s blocked_ips.txt (one address per line)'
complete -c portwarden -n "__fish_portwarden_needs_command" -f -a "list" -d 'Bans in the kernel set and in the store, side by side'
complete -c portwarden -n "__fish_portwarden_needs_command" -f -a "status" -d 'What portwarden is doing: table, sets, store, sources'
complete -c portwarden -n "__fish_portwarden_needs_command" -f -a "run" -d '`run --once`: one incremental pass over every source, then exit (cron mode)'
complete -c portwarden -n "__fish_portwarden_needs_command" -f -a "daemon" -d 'Follow the sources and ban within milliseconds'
complete -c portwarden -n "__fish_portwarden_needs_command" -f -a "cron" -d 'Install, remove or print /etc/cron.d/portwarden'
complete -c portwarden -n "__fish_portwarden_needs_command" -f -a "systemd" -d 'Install or print the systemd unit for the daemon'
complete -c portwarden -n "__fish_portwarden_needs_command" -f -a "fail2ban" -d 'Write or print the Fail2Ban filter, jail and action (the alternative method)'
complete -c portwarden -n "__fish_portwarden_needs_command" -f -a "demo" -d 'The seed lab in throwaway network namespaces: scan, detect, ban, scan again'
complete -c portwarden -n "__fish_portwarden_needs_command" -f -a "config" -d 'Check the config file, show the effective values, or print the commented default'
complete -c portwarden -n "__fish_portwarden_needs_command" -f -a "generate" -d 'Write the man pages or the shell completions (for packagers)'
complete -c portwarden -n "__fish_portwarden_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c portwarden -n "__fish_portwarden_using_subcommand scan" -l html -d 'Also write a self-contained HTML report (timeline, scan types, ports, findings) here' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand scan" -l prefix -d 'LOG prefix that marks the records (repeatable; replaces the config\'s). An empty string accepts any netfilter LOG record' -r
complete -c portwarden -n "__fish_portwarden_using_subcommand scan" -l config -d 'Config file (default: $PORTWARDEN_CONFIG, else /etc/portwarden/portwarden.toml if it exists)' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand scan" -l state-dir -d 'State directory (default: $PORTWARDEN_STATE_DIR, else the config\'s state_dir)' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand scan" -l log-format -d 'Log messages as text (coloured only on a terminal) or as JSON lines' -r -f -a "text\t'One line per message; colours only when standard error is a terminal and NO_COLOR is unset'
json\t'One JSON object per message (timestamp, level, fields, target), never coloured'"
complete -c portwarden -n "__fish_portwarden_using_subcommand scan" -l json -d 'One JSON object on stdout instead of a table'
complete -c portwarden -n "__fish_portwarden_using_subcommand scan" -l local -d 'Also count this host\'s listening ports (from /proc/net) as served'
complete -c portwarden -n "__fish_portwarden_using_subcommand scan" -l explain -d 'After the table, one line per reason a line was rejected: how many, and the first such line (file, line number, text), so that a format that is not understood shows itself'
complete -c portwarden -n "__fish_portwarden_using_subcommand scan" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides'
complete -c portwarden -n "__fish_portwarden_using_subcommand scan" -s q -l quiet -d 'Only errors'
complete -c portwarden -n "__fish_portwarden_using_subcommand scan" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c portwarden -n "__fish_portwarden_using_subcommand setup" -l config -d 'Config file (default: $PORTWARDEN_CONFIG, else /etc/portwarden/portwarden.toml if it exists)' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand setup" -l state-dir -d 'State directory (default: $PORTWARDEN_STATE_DIR, else the config\'s state_dir)' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand setup" -l log-format -d 'Log messages as text (coloured only on a terminal) or as JSON lines' -r -f -a "text\t'One line per message; colours only when standard error is a terminal and NO_COLOR is unset'
json\t'One JSON object per message (timestamp, level, fields, target), never coloured'"
complete -c portwarden -n "__fish_portwarden_using_subcommand setup" -l dry-run -d 'Print the ruleset setup would load, and change nothing'
complete -c portwarden -n "__fish_portwarden_using_subcommand setup" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides'
complete -c portwarden -n "__fish_portwarden_using_subcommand setup" -s q -l quiet -d 'Only errors'
complete -c portwarden -n "__fish_portwarden_using_subcommand setup" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c portwarden -n "__fish_portwarden_using_subcommand teardown" -l config -d 'Config file (default: $PORTWARDEN_CONFIG, else /etc/portwarden/portwarden.toml if it exists)' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand teardown" -l state-dir -d 'State directory (default: $PORTWARDEN_STATE_DIR, else the config\'s state_dir)' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand teardown" -l log-format -d 'Log messages as text (coloured only on a terminal) or as JSON lines' -r -f -a "text\t'One line per message; colours only when standard error is a terminal and NO_COLOR is unset'
json\t'One JSON object per message (timestamp, level, fields, target), never coloured'"
complete -c portwarden -n "__fish_portwarden_using_subcommand teardown" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides'
complete -c portwarden -n "__fish_portwarden_using_subcommand teardown" -s q -l quiet -d 'Only errors'
complete -c portwarden -n "__fish_portwarden_using_subcommand teardown" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c portwarden -n "__fish_portwarden_using_subcommand ban" -l for -d 'How long (90s, 10m, 1h 30m, 7d). Default: the config\'s ban.duration' -r
complete -c portwarden -n "__fish_portwarden_using_subcommand ban" -l reason -d 'Why, for `list` and the store' -r
complete -c portwarden -n "__fish_portwarden_using_subcommand ban" -l config -d 'Config file (default: $PORTWARDEN_CONFIG, else /etc/portwarden/portwarden.toml if it exists)' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand ban" -l state-dir -d 'State directory (default: $PORTWARDEN_STATE_DIR, else the config\'s state_dir)' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand ban" -l log-format -d 'Log messages as text (coloured only on a terminal) or as JSON lines' -r -f -a "text\t'One line per message; colours only when standard error is a terminal and NO_COLOR is unset'
json\t'One JSON object per message (timestamp, level, fields, target), never coloured'"
complete -c portwarden -n "__fish_portwarden_using_subcommand ban" -l permanent -d 'Never expire'
complete -c portwarden -n "__fish_portwarden_using_subcommand ban" -l force -d 'Ban even when the target is or holds an allowlisted address'
complete -c portwarden -n "__fish_portwarden_using_subcommand ban" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides'
complete -c portwarden -n "__fish_portwarden_using_subcommand ban" -s q -l quiet -d 'Only errors'
complete -c portwarden -n "__fish_portwarden_using_subcommand ban" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c portwarden -n "__fish_portwarden_using_subcommand unban" -l config -d 'Config file (default: $PORTWARDEN_CONFIG, else /etc/portwarden/portwarden.toml if it exists)' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand unban" -l state-dir -d 'State directory (default: $PORTWARDEN_STATE_DIR, else the config\'s state_dir)' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand unban" -l log-format -d 'Log messages as text (coloured only on a terminal) or as JSON lines' -r -f -a "text\t'One line per message; colours only when standard error is a terminal and NO_COLOR is unset'
json\t'One JSON object per message (timestamp, level, fields, target), never coloured'"
complete -c portwarden -n "__fish_portwarden_using_subcommand unban" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides'
complete -c portwarden -n "__fish_portwarden_using_subcommand unban" -s q -l quiet -d 'Only errors'
complete -c portwarden -n "__fish_portwarden_using_subcommand unban" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c portwarden -n "__fish_portwarden_using_subcommand import" -l for -d 'How long each ban lasts (90s, 10m, 1h 30m, 7d). Default: the config\'s ban.duration' -r
complete -c portwarden -n "__fish_portwarden_using_subcommand import" -l config -d 'Config file (default: $PORTWARDEN_CONFIG, else /etc/portwarden/portwarden.toml if it exists)' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand import" -l state-dir -d 'State directory (default: $PORTWARDEN_STATE_DIR, else the config\'s state_dir)' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand import" -l log-format -d 'Log messages as text (coloured only on a terminal) or as JSON lines' -r -f -a "text\t'One line per message; colours only when standard error is a terminal and NO_COLOR is unset'
json\t'One JSON object per message (timestamp, level, fields, target), never coloured'"
complete -c portwarden -n "__fish_portwarden_using_subcommand import" -l permanent -d 'Never expire (what the seed lab\'s bans did)'
complete -c portwarden -n "__fish_portwarden_using_subcommand import" -l force -d 'Ban allowlisted entries too'
complete -c portwarden -n "__fish_portwarden_using_subcommand import" -l dry-run -d 'Parse and report what would be banned; change neither the firewall nor the store'
complete -c portwarden -n "__fish_portwarden_using_subcommand import" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides'
complete -c portwarden -n "__fish_portwarden_using_subcommand import" -s q -l quiet -d 'Only errors'
complete -c portwarden -n "__fish_portwarden_using_subcommand import" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c portwarden -n "__fish_portwarden_using_subcommand list" -l config -d 'Config file (default: $PORTWARDEN_CONFIG, else /etc/portwarden/portwarden.toml if it exists)' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand list" -l state-dir -d 'State directory (default: $PORTWARDEN_STATE_DIR, else the config\'s state_dir)' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand list" -l log-format -d 'Log messages as text (coloured only on a terminal) or as JSON lines' -r -f -a "text\t'One line per message; colours only when standard error is a terminal and NO_COLOR is unset'
json\t'One JSON object per message (timestamp, level, fields, target), never coloured'"
complete -c portwarden -n "__fish_portwarden_using_subcommand list" -l json -d 'Print JSON instead of a table'
complete -c portwarden -n "__fish_portwarden_using_subcommand list" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides'
complete -c portwarden -n "__fish_portwarden_using_subcommand list" -s q -l quiet -d 'Only errors'
complete -c portwarden -n "__fish_portwarden_using_subcommand list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c portwarden -n "__fish_portwarden_using_subcommand status" -l config -d 'Config file (default: $PORTWARDEN_CONFIG, else /etc/portwarden/portwarden.toml if it exists)' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand status" -l state-dir -d 'State directory (default: $PORTWARDEN_STATE_DIR, else the config\'s state_dir)' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand status" -l log-format -d 'Log messages as text (coloured only on a terminal) or as JSON lines' -r -f -a "text\t'One line per message; colours only when standard error is a terminal and NO_COLOR is unset'
json\t'One JSON object per message (timestamp, level, fields, target), never coloured'"
complete -c portwarden -n "__fish_portwarden_using_subcommand status" -l json -d 'Print JSON instead of text'
complete -c portwarden -n "__fish_portwarden_using_subcommand status" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides'
complete -c portwarden -n "__fish_portwarden_using_subcommand status" -s q -l quiet -d 'Only errors'
complete -c portwarden -n "__fish_portwarden_using_subcommand status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c portwarden -n "__fish_portwarden_using_subcommand run" -l config -d 'Config file (default: $PORTWARDEN_CONFIG, else /etc/portwarden/portwarden.toml if it exists)' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand run" -l state-dir -d 'State directory (default: $PORTWARDEN_STATE_DIR, else the config\'s state_dir)' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand run" -l log-format -d 'Log messages as text (coloured only on a terminal) or as JSON lines' -r -f -a "text\t'One line per message; colours only when standard error is a terminal and NO_COLOR is unset'
json\t'One JSON object per message (timestamp, level, fields, target), never coloured'"
complete -c portwarden -n "__fish_portwarden_using_subcommand run" -l once -d 'One pass, then exit (the cron mode). Without it, use `portwarden daemon`'
complete -c portwarden -n "__fish_portwarden_using_subcommand run" -l json -d 'Print the summary as JSON'
complete -c portwarden -n "__fish_portwarden_using_subcommand run" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides'
complete -c portwarden -n "__fish_portwarden_using_subcommand run" -s q -l quiet -d 'Only errors'
complete -c portwarden -n "__fish_portwarden_using_subcommand run" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c portwarden -n "__fish_portwarden_using_subcommand daemon" -l config -d 'Config file (default: $PORTWARDEN_CONFIG, else /etc/portwarden/portwarden.toml if it exists)' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand daemon" -l state-dir -d 'State directory (default: $PORTWARDEN_STATE_DIR, else the config\'s state_dir)' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand daemon" -l log-format -d 'Log messages as text (coloured only on a terminal) or as JSON lines' -r -f -a "text\t'One line per message; colours only when standard error is a terminal and NO_COLOR is unset'
json\t'One JSON object per message (timestamp, level, fields, target), never coloured'"
complete -c portwarden -n "__fish_portwarden_using_subcommand daemon" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides'
complete -c portwarden -n "__fish_portwarden_using_subcommand daemon" -s q -l quiet -d 'Only errors'
complete -c portwarden -n "__fish_portwarden_using_subcommand daemon" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c portwarden -n "__fish_portwarden_using_subcommand cron; and not __fish_seen_subcommand_from install remove print help" -l config -d 'Config file (default: $PORTWARDEN_CONFIG, else /etc/portwarden/portwarden.toml if it exists)' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand cron; and not __fish_seen_subcommand_from install remove print help" -l state-dir -d 'State directory (default: $PORTWARDEN_STATE_DIR, else the config\'s state_dir)' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand cron; and not __fish_seen_subcommand_from install remove print help" -l log-format -d 'Log messages as text (coloured only on a terminal) or as JSON lines' -r -f -a "text\t'One line per message; colours only when standard error is a terminal and NO_COLOR is unset'
json\t'One JSON object per message (timestamp, level, fields, target), never coloured'"
complete -c portwarden -n "__fish_portwarden_using_subcommand cron; and not __fish_seen_subcommand_from install remove print help" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides'
complete -c portwarden -n "__fish_portwarden_using_subcommand cron; and not __fish_seen_subcommand_from install remove print help" -s q -l quiet -d 'Only errors'
complete -c portwarden -n "__fish_portwarden_using_subcommand cron; and not __fish_seen_subcommand_from install remove print help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c portwarden -n "__fish_portwarden_using_subcommand cron; and not __fish_seen_subcommand_from install remove print help" -f -a "install" -d 'Write /etc/cron.d/portwarden: `portwarden run --once` every minute, as root'
complete -c portwarden -n "__fish_portwarden_using_subcommand cron; and not __fish_seen_subcommand_from install remove print help" -f -a "remove" -d 'Delete /etc/cron.d/portwarden, if portwarden wrote it'
complete -c portwarden -n "__fish_portwarden_using_subcommand cron; and not __fish_seen_subcommand_from install remove print help" -f -a "print" -d 'Print the file `install` would write'
complete -c portwarden -n "__fish_portwarden_using_subcommand cron; and not __fish_seen_subcommand_from install remove print help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c portwarden -n "__fish_portwarden_using_subcommand cron; and __fish_seen_subcommand_from install" -l dir -d 'Directory cron reads system jobs from' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand cron; and __fish_seen_subcommand_from install" -l log -d 'File the job\'s output is appended to' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand cron; and __fish_seen_subcommand_from install" -l config -d 'Config file (default: $PORTWARDEN_CONFIG, else /etc/portwarden/portwarden.toml if it exists)' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand cron; and __fish_seen_subcommand_from install" -l state-dir -d 'State directory (default: $PORTWARDEN_STATE_DIR, else the config\'s state_dir)' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand cron; and __fish_seen_subcommand_from install" -l log-format -d 'Log messages as text (coloured only on a terminal) or as JSON lines' -r -f -a "text\t'One line per message; colours only when standard error is a terminal and NO_COLOR is unset'
json\t'One JSON object per message (timestamp, level, fields, target), never coloured'"
complete -c portwarden -n "__fish_portwarden_using_subcommand cron; and __fish_seen_subcommand_from install" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides'
complete -c portwarden -n "__fish_portwarden_using_subcommand cron; and __fish_seen_subcommand_from install" -s q -l quiet -d 'Only errors'
complete -c portwarden -n "__fish_portwarden_using_subcommand cron; and __fish_seen_subcommand_from install" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c portwarden -n "__fish_portwarden_using_subcommand cron; and __fish_seen_subcommand_from remove" -l dir -d 'Directory cron reads system jobs from' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand cron; and __fish_seen_subcommand_from remove" -l config -d 'Config file (default: $PORTWARDEN_CONFIG, else /etc/portwarden/portwarden.toml if it exists)' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand cron; and __fish_seen_subcommand_from remove" -l state-dir -d 'State directory (default: $PORTWARDEN_STATE_DIR, else the config\'s state_dir)' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand cron; and __fish_seen_subcommand_from remove" -l log-format -d 'Log messages as text (coloured only on a terminal) or as JSON lines' -r -f -a "text\t'One line per message; colours only when standard error is a terminal and NO_COLOR is unset'
json\t'One JSON object per message (timestamp, level, fields, target), never coloured'"
complete -c portwarden -n "__fish_portwarden_using_subcommand cron; and __fish_seen_subcommand_from remove" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides'
complete -c portwarden -n "__fish_portwarden_using_subcommand cron; and __fish_seen_subcommand_from remove" -s q -l quiet -d 'Only errors'
complete -c portwarden -n "__fish_portwarden_using_subcommand cron; and __fish_seen_subcommand_from remove" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c portwarden -n "__fish_portwarden_using_subcommand cron; and __fish_seen_subcommand_from print" -l log -d 'File the job\'s output is appended to' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand cron; and __fish_seen_subcommand_from print" -l config -d 'Config file (default: $PORTWARDEN_CONFIG, else /etc/portwarden/portwarden.toml if it exists)' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand cron; and __fish_seen_subcommand_from print" -l state-dir -d 'State directory (default: $PORTWARDEN_STATE_DIR, else the config\'s state_dir)' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand cron; and __fish_seen_subcommand_from print" -l log-format -d 'Log messages as text (coloured only on a terminal) or as JSON lines' -r -f -a "text\t'One line per message; colours only when standard error is a terminal and NO_COLOR is unset'
json\t'One JSON object per message (timestamp, level, fields, target), never coloured'"
complete -c portwarden -n "__fish_portwarden_using_subcommand cron; and __fish_seen_subcommand_from print" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides'
complete -c portwarden -n "__fish_portwarden_using_subcommand cron; and __fish_seen_subcommand_from print" -s q -l quiet -d 'Only errors'
complete -c portwarden -n "__fish_portwarden_using_subcommand cron; and __fish_seen_subcommand_from print" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c portwarden -n "__fish_portwarden_using_subcommand cron; and __fish_seen_subcommand_from help" -f -a "install" -d 'Write /etc/cron.d/portwarden: `portwarden run --once` every minute, as root'
complete -c portwarden -n "__fish_portwarden_using_subcommand cron; and __fish_seen_subcommand_from help" -f -a "remove" -d 'Delete /etc/cron.d/portwarden, if portwarden wrote it'
complete -c portwarden -n "__fish_portwarden_using_subcommand cron; and __fish_seen_subcommand_from help" -f -a "print" -d 'Print the file `install` would write'
complete -c portwarden -n "__fish_portwarden_using_subcommand cron; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c portwarden -n "__fish_portwarden_using_subcommand systemd; and not __fish_seen_subcommand_from install print help" -l config -d 'Config file (default: $PORTWARDEN_CONFIG, else /etc/portwarden/portwarden.toml if it exists)' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand systemd; and not __fish_seen_subcommand_from install print help" -l state-dir -d 'State directory (default: $PORTWARDEN_STATE_DIR, else the config\'s state_dir)' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand systemd; and not __fish_seen_subcommand_from install print help" -l log-format -d 'Log messages as text (coloured only on a terminal) or as JSON lines' -r -f -a "text\t'One line per message; colours only when standard error is a terminal and NO_COLOR is unset'
json\t'One JSON object per message (timestamp, level, fields, target), never coloured'"
complete -c portwarden -n "__fish_portwarden_using_subcommand systemd; and not __fish_seen_subcommand_from install print help" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides'
complete -c portwarden -n "__fish_portwarden_using_subcommand systemd; and not __fish_seen_subcommand_from install print help" -s q -l quiet -d 'Only errors'
complete -c portwarden -n "__fish_portwarden_using_subcommand systemd; and not __fish_seen_subcommand_from install print help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c portwarden -n "__fish_portwarden_using_subcommand systemd; and not __fish_seen_subcommand_from install print help" -f -a "install" -d 'Write portwarden.service for `portwarden daemon`'
complete -c portwarden -n "__fish_portwarden_using_subcommand systemd; and not __fish_seen_subcommand_from install print help" -f -a "print" -d 'Print the unit `install` would write'
complete -c portwarden -n "__fish_portwarden_using_subcommand systemd; and not __fish_seen_subcommand_from install print help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c portwarden -n "__fish_portwarden_using_subcommand systemd; and __fish_seen_subcommand_from install" -l dir -d 'Directory of the unit file' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand systemd; and __fish_seen_subcommand_from install" -l config -d 'Config file (default: $PORTWARDEN_CONFIG, else /etc/portwarden/portwarden.toml if it exists)' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand systemd; and __fish_seen_subcommand_from install" -l state-dir -d 'State directory (default: $PORTWARDEN_STATE_DIR, else the config\'s state_dir)' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand systemd; and __fish_seen_subcommand_from install" -l log-format -d 'Log messages as text (coloured only on a terminal) or as JSON lines' -r -f -a "text\t'One line per message; colours only when standard error is a terminal and NO_COLOR is unset'
json\t'One JSON object per message (timestamp, level, fields, target), never coloured'"
complete -c portwarden -n "__fish_portwarden_using_subcommand systemd; and __fish_seen_subcommand_from install" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides'
complete -c portwarden -n "__fish_portwarden_using_subcommand systemd; and __fish_seen_subcommand_from install" -s q -l quiet -d 'Only errors'
complete -c portwarden -n "__fish_portwarden_using_subcommand systemd; and __fish_seen_subcommand_from install" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c portwarden -n "__fish_portwarden_using_subcommand systemd; and __fish_seen_subcommand_from print" -l config -d 'Config file (default: $PORTWARDEN_CONFIG, else /etc/portwarden/portwarden.toml if it exists)' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand systemd; and __fish_seen_subcommand_from print" -l state-dir -d 'State directory (default: $PORTWARDEN_STATE_DIR, else the config\'s state_dir)' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand systemd; and __fish_seen_subcommand_from print" -l log-format -d 'Log messages as text (coloured only on a terminal) or as JSON lines' -r -f -a "text\t'One line per message; colours only when standard error is a terminal and NO_COLOR is unset'
json\t'One JSON object per message (timestamp, level, fields, target), never coloured'"
complete -c portwarden -n "__fish_portwarden_using_subcommand systemd; and __fish_seen_subcommand_from print" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides'
complete -c portwarden -n "__fish_portwarden_using_subcommand systemd; and __fish_seen_subcommand_from print" -s q -l quiet -d 'Only errors'
complete -c portwarden -n "__fish_portwarden_using_subcommand systemd; and __fish_seen_subcommand_from print" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c portwarden -n "__fish_portwarden_using_subcommand systemd; and __fish_seen_subcommand_from help" -f -a "install" -d 'Write portwarden.service for `portwarden daemon`'
complete -c portwarden -n "__fish_portwarden_using_subcommand systemd; and __fish_seen_subcommand_from help" -f -a "print" -d 'Print the unit `install` would write'
complete -c portwarden -n "__fish_portwarden_using_subcommand systemd; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c portwarden -n "__fish_portwarden_using_subcommand fail2ban; and not __fish_seen_subcommand_from print install help" -l config -d 'Config file (default: $PORTWARDEN_CONFIG, else /etc/portwarden/portwarden.toml if it exists)' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand fail2ban; and not __fish_seen_subcommand_from print install help" -l state-dir -d 'State directory (default: $PORTWARDEN_STATE_DIR, else the config\'s state_dir)' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand fail2ban; and not __fish_seen_subcommand_from print install help" -l log-format -d 'Log messages as text (coloured only on a terminal) or as JSON lines' -r -f -a "text\t'One line per message; colours only when standard error is a terminal and NO_COLOR is unset'
json\t'One JSON object per message (timestamp, level, fields, target), never coloured'"
complete -c portwarden -n "__fish_portwarden_using_subcommand fail2ban; and not __fish_seen_subcommand_from print install help" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides'
complete -c portwarden -n "__fish_portwarden_using_subcommand fail2ban; and not __fish_seen_subcommand_from print install help" -s q -l quiet -d 'Only errors'
complete -c portwarden -n "__fish_portwarden_using_subcommand fail2ban; and not __fish_seen_subcommand_from print install help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c portwarden -n "__fish_portwarden_using_subcommand fail2ban; and not __fish_seen_subcommand_from print install help" -f -a "print" -d 'Show the files on stdout, each preceded by its path; writes nothing'
complete -c portwarden -n "__fish_portwarden_using_subcommand fail2ban; and not __fish_seen_subcommand_from print install help" -f -a "install" -d 'Write the files into Fail2Ban\'s config directory'
complete -c portwarden -n "__fish_portwarden_using_subcommand fail2ban; and not __fish_seen_subcommand_from print install help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c portwarden -n "__fish_portwarden_using_subcommand fail2ban; and __fish_seen_subcommand_from print" -l dir -d 'Fail2Ban\'s config directory (filter.d/, jail.d/, action.d/ under it)' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand fail2ban; and __fish_seen_subcommand_from print" -l action -d 'How the jail bans: Fail2Ban\'s own nftables table, or portwarden\'s sets' -r -f -a "nftables-allports\t'Fail2Ban\'s own `nftables-allports` (its own table `inet f2b-table`)'
portwarden\t'`action.d/portwarden-nftables.conf`: portwarden\'s `banned4`/`banned6` sets, with a timeout'"
complete -c portwarden -n "__fish_portwarden_using_subcommand fail2ban; and __fish_seen_subcommand_from print" -l backend -d 'Where the jail reads: /var/log/kern.log, or the journal (kernel transport only)' -r -f -a "file\t'A log file written by rsyslog (`/var/log/kern.log`)'
systemd\t'The journal, kernel transport only'"
complete -c portwarden -n "__fish_portwarden_using_subcommand fail2ban; and __fish_seen_subcommand_from print" -l prefix -d 'LOG prefix to match (default: the config\'s first `[log] prefixes` entry)' -r
complete -c portwarden -n "__fish_portwarden_using_subcommand fail2ban; and __fish_seen_subcommand_from print" -l logpath -d 'The log file the jail reads with --backend file' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand fail2ban; and __fish_seen_subcommand_from print" -l config -d 'Config file (default: $PORTWARDEN_CONFIG, else /etc/portwarden/portwarden.toml if it exists)' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand fail2ban; and __fish_seen_subcommand_from print" -l state-dir -d 'State directory (default: $PORTWARDEN_STATE_DIR, else the config\'s state_dir)' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand fail2ban; and __fish_seen_subcommand_from print" -l log-format -d 'Log messages as text (coloured only on a terminal) or as JSON lines' -r -f -a "text\t'One line per message; colours only when standard error is a terminal and NO_COLOR is unset'
json\t'One JSON object per message (timestamp, level, fields, target), never coloured'"
complete -c portwarden -n "__fish_portwarden_using_subcommand fail2ban; and __fish_seen_subcommand_from print" -l force -d 'Replace files that differ from what portwarden would write'
complete -c portwarden -n "__fish_portwarden_using_subcommand fail2ban; and __fish_seen_subcommand_from print" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides'
complete -c portwarden -n "__fish_portwarden_using_subcommand fail2ban; and __fish_seen_subcommand_from print" -s q -l quiet -d 'Only errors'
complete -c portwarden -n "__fish_portwarden_using_subcommand fail2ban; and __fish_seen_subcommand_from print" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c portwarden -n "__fish_portwarden_using_subcommand fail2ban; and __fish_seen_subcommand_from install" -l dir -d 'Fail2Ban\'s config directory (filter.d/, jail.d/, action.d/ under it)' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand fail2ban; and __fish_seen_subcommand_from install" -l action -d 'How the jail bans: Fail2Ban\'s own nftables table, or portwarden\'s sets' -r -f -a "nftables-allports\t'Fail2Ban\'s own `nftables-allports` (its own table `inet f2b-table`)'
portwarden\t'`action.d/portwarden-nftables.conf`: portwarden\'s `banned4`/`banned6` sets, with a timeout'"
complete -c portwarden -n "__fish_portwarden_using_subcommand fail2ban; and __fish_seen_subcommand_from install" -l backend -d 'Where the jail reads: /var/log/kern.log, or the journal (kernel transport only)' -r -f -a "file\t'A log file written by rsyslog (`/var/log/kern.log`)'
systemd\t'The journal, kernel transport only'"
complete -c portwarden -n "__fish_portwarden_using_subcommand fail2ban; and __fish_seen_subcommand_from install" -l prefix -d 'LOG prefix to match (default: the config\'s first `[log] prefixes` entry)' -r
complete -c portwarden -n "__fish_portwarden_using_subcommand fail2ban; and __fish_seen_subcommand_from install" -l logpath -d 'The log file the jail reads with --backend file' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand fail2ban; and __fish_seen_subcommand_from install" -l config -d 'Config file (default: $PORTWARDEN_CONFIG, else /etc/portwarden/portwarden.toml if it exists)' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand fail2ban; and __fish_seen_subcommand_from install" -l state-dir -d 'State directory (default: $PORTWARDEN_STATE_DIR, else the config\'s state_dir)' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand fail2ban; and __fish_seen_subcommand_from install" -l log-format -d 'Log messages as text (coloured only on a terminal) or as JSON lines' -r -f -a "text\t'One line per message; colours only when standard error is a terminal and NO_COLOR is unset'
json\t'One JSON object per message (timestamp, level, fields, target), never coloured'"
complete -c portwarden -n "__fish_portwarden_using_subcommand fail2ban; and __fish_seen_subcommand_from install" -l force -d 'Replace files that differ from what portwarden would write'
complete -c portwarden -n "__fish_portwarden_using_subcommand fail2ban; and __fish_seen_subcommand_from install" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides'
complete -c portwarden -n "__fish_portwarden_using_subcommand fail2ban; and __fish_seen_subcommand_from install" -s q -l quiet -d 'Only errors'
complete -c portwarden -n "__fish_portwarden_using_subcommand fail2ban; and __fish_seen_subcommand_from install" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c portwarden -n "__fish_portwarden_using_subcommand fail2ban; and __fish_seen_subcommand_from help" -f -a "print" -d 'Show the files on stdout, each preceded by its path; writes nothing'
complete -c portwarden -n "__fish_portwarden_using_subcommand fail2ban; and __fish_seen_subcommand_from help" -f -a "install" -d 'Write the files into Fail2Ban\'s config directory'
complete -c portwarden -n "__fish_portwarden_using_subcommand fail2ban; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c portwarden -n "__fish_portwarden_using_subcommand demo" -l config -d 'Config file (default: $PORTWARDEN_CONFIG, else /etc/portwarden/portwarden.toml if it exists)' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand demo" -l state-dir -d 'State directory (default: $PORTWARDEN_STATE_DIR, else the config\'s state_dir)' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand demo" -l log-format -d 'Log messages as text (coloured only on a terminal) or as JSON lines' -r -f -a "text\t'One line per message; colours only when standard error is a terminal and NO_COLOR is unset'
json\t'One JSON object per message (timestamp, level, fields, target), never coloured'"
complete -c portwarden -n "__fish_portwarden_using_subcommand demo" -l keep -d 'Leave the namespaces, the config and the sysctl in place for exploring'
complete -c portwarden -n "__fish_portwarden_using_subcommand demo" -l cron -d 'Cron mode, as in the seed lab: `run --once` before and after the scan instead of the daemon'
complete -c portwarden -n "__fish_portwarden_using_subcommand demo" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides'
complete -c portwarden -n "__fish_portwarden_using_subcommand demo" -s q -l quiet -d 'Only errors'
complete -c portwarden -n "__fish_portwarden_using_subcommand demo" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c portwarden -n "__fish_portwarden_using_subcommand config; and not __fish_seen_subcommand_from check show print-default help" -l config -d 'Config file (default: $PORTWARDEN_CONFIG, else /etc/portwarden/portwarden.toml if it exists)' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand config; and not __fish_seen_subcommand_from check show print-default help" -l state-dir -d 'State directory (default: $PORTWARDEN_STATE_DIR, else the config\'s state_dir)' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand config; and not __fish_seen_subcommand_from check show print-default help" -l log-format -d 'Log messages as text (coloured only on a terminal) or as JSON lines' -r -f -a "text\t'One line per message; colours only when standard error is a terminal and NO_COLOR is unset'
json\t'One JSON object per message (timestamp, level, fields, target), never coloured'"
complete -c portwarden -n "__fish_portwarden_using_subcommand config; and not __fish_seen_subcommand_from check show print-default help" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides'
complete -c portwarden -n "__fish_portwarden_using_subcommand config; and not __fish_seen_subcommand_from check show print-default help" -s q -l quiet -d 'Only errors'
complete -c portwarden -n "__fish_portwarden_using_subcommand config; and not __fish_seen_subcommand_from check show print-default help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c portwarden -n "__fish_portwarden_using_subcommand config; and not __fish_seen_subcommand_from check show print-default help" -f -a "check" -d 'Check the config file: exit 0, or list every problem with file, line, key and the fix (exit 1)'
complete -c portwarden -n "__fish_portwarden_using_subcommand config; and not __fish_seen_subcommand_from check show print-default help" -f -a "show" -d 'The effective value of every key and where it came from (default, file, environment, flag)'
complete -c portwarden -n "__fish_portwarden_using_subcommand config; and not __fish_seen_subcommand_from check show print-default help" -f -a "print-default" -d 'Print the commented example file: every key at its default, with the reasoning'
complete -c portwarden -n "__fish_portwarden_using_subcommand config; and not __fish_seen_subcommand_from check show print-default help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c portwarden -n "__fish_portwarden_using_subcommand config; and __fish_seen_subcommand_from check" -l config -d 'Config file (default: $PORTWARDEN_CONFIG, else /etc/portwarden/portwarden.toml if it exists)' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand config; and __fish_seen_subcommand_from check" -l state-dir -d 'State directory (default: $PORTWARDEN_STATE_DIR, else the config\'s state_dir)' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand config; and __fish_seen_subcommand_from check" -l log-format -d 'Log messages as text (coloured only on a terminal) or as JSON lines' -r -f -a "text\t'One line per message; colours only when standard error is a terminal and NO_COLOR is unset'
json\t'One JSON object per message (timestamp, level, fields, target), never coloured'"
complete -c portwarden -n "__fish_portwarden_using_subcommand config; and __fish_seen_subcommand_from check" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides'
complete -c portwarden -n "__fish_portwarden_using_subcommand config; and __fish_seen_subcommand_from check" -s q -l quiet -d 'Only errors'
complete -c portwarden -n "__fish_portwarden_using_subcommand config; and __fish_seen_subcommand_from check" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c portwarden -n "__fish_portwarden_using_subcommand config; and __fish_seen_subcommand_from show" -l config -d 'Config file (default: $PORTWARDEN_CONFIG, else /etc/portwarden/portwarden.toml if it exists)' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand config; and __fish_seen_subcommand_from show" -l state-dir -d 'State directory (default: $PORTWARDEN_STATE_DIR, else the config\'s state_dir)' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand config; and __fish_seen_subcommand_from show" -l log-format -d 'Log messages as text (coloured only on a terminal) or as JSON lines' -r -f -a "text\t'One line per message; colours only when standard error is a terminal and NO_COLOR is unset'
json\t'One JSON object per message (timestamp, level, fields, target), never coloured'"
complete -c portwarden -n "__fish_portwarden_using_subcommand config; and __fish_seen_subcommand_from show" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides'
complete -c portwarden -n "__fish_portwarden_using_subcommand config; and __fish_seen_subcommand_from show" -s q -l quiet -d 'Only errors'
complete -c portwarden -n "__fish_portwarden_using_subcommand config; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c portwarden -n "__fish_portwarden_using_subcommand config; and __fish_seen_subcommand_from print-default" -l config -d 'Config file (default: $PORTWARDEN_CONFIG, else /etc/portwarden/portwarden.toml if it exists)' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand config; and __fish_seen_subcommand_from print-default" -l state-dir -d 'State directory (default: $PORTWARDEN_STATE_DIR, else the config\'s state_dir)' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand config; and __fish_seen_subcommand_from print-default" -l log-format -d 'Log messages as text (coloured only on a terminal) or as JSON lines' -r -f -a "text\t'One line per message; colours only when standard error is a terminal and NO_COLOR is unset'
json\t'One JSON object per message (timestamp, level, fields, target), never coloured'"
complete -c portwarden -n "__fish_portwarden_using_subcommand config; and __fish_seen_subcommand_from print-default" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides'
complete -c portwarden -n "__fish_portwarden_using_subcommand config; and __fish_seen_subcommand_from print-default" -s q -l quiet -d 'Only errors'
complete -c portwarden -n "__fish_portwarden_using_subcommand config; and __fish_seen_subcommand_from print-default" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c portwarden -n "__fish_portwarden_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "check" -d 'Check the config file: exit 0, or list every problem with file, line, key and the fix (exit 1)'
complete -c portwarden -n "__fish_portwarden_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "show" -d 'The effective value of every key and where it came from (default, file, environment, flag)'
complete -c portwarden -n "__fish_portwarden_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "print-default" -d 'Print the commented example file: every key at its default, with the reasoning'
complete -c portwarden -n "__fish_portwarden_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c portwarden -n "__fish_portwarden_using_subcommand generate; and not __fish_seen_subcommand_from man completions package help" -l config -d 'Config file (default: $PORTWARDEN_CONFIG, else /etc/portwarden/portwarden.toml if it exists)' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand generate; and not __fish_seen_subcommand_from man completions package help" -l state-dir -d 'State directory (default: $PORTWARDEN_STATE_DIR, else the config\'s state_dir)' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand generate; and not __fish_seen_subcommand_from man completions package help" -l log-format -d 'Log messages as text (coloured only on a terminal) or as JSON lines' -r -f -a "text\t'One line per message; colours only when standard error is a terminal and NO_COLOR is unset'
json\t'One JSON object per message (timestamp, level, fields, target), never coloured'"
complete -c portwarden -n "__fish_portwarden_using_subcommand generate; and not __fish_seen_subcommand_from man completions package help" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides'
complete -c portwarden -n "__fish_portwarden_using_subcommand generate; and not __fish_seen_subcommand_from man completions package help" -s q -l quiet -d 'Only errors'
complete -c portwarden -n "__fish_portwarden_using_subcommand generate; and not __fish_seen_subcommand_from man completions package help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c portwarden -n "__fish_portwarden_using_subcommand generate; and not __fish_seen_subcommand_from man completions package help" -f -a "man" -d 'Man pages, section 8 (portwarden.8, portwarden-scan.8, ...)'
complete -c portwarden -n "__fish_portwarden_using_subcommand generate; and not __fish_seen_subcommand_from man completions package help" -f -a "completions" -d 'Completions for bash, zsh and fish'
complete -c portwarden -n "__fish_portwarden_using_subcommand generate; and not __fish_seen_subcommand_from man completions package help" -f -a "package" -d 'The systemd unit and the (commented-out) cron file the Debian package installs'
complete -c portwarden -n "__fish_portwarden_using_subcommand generate; and not __fish_seen_subcommand_from man completions package help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c portwarden -n "__fish_portwarden_using_subcommand generate; and __fish_seen_subcommand_from man" -l config -d 'Config file (default: $PORTWARDEN_CONFIG, else /etc/portwarden/portwarden.toml if it exists)' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand generate; and __fish_seen_subcommand_from man" -l state-dir -d 'State directory (default: $PORTWARDEN_STATE_DIR, else the config\'s state_dir)' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand generate; and __fish_seen_subcommand_from man" -l log-format -d 'Log messages as text (coloured only on a terminal) or as JSON lines' -r -f -a "text\t'One line per message; colours only when standard error is a terminal and NO_COLOR is unset'
json\t'One JSON object per message (timestamp, level, fields, target), never coloured'"
complete -c portwarden -n "__fish_portwarden_using_subcommand generate; and __fish_seen_subcommand_from man" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides'
complete -c portwarden -n "__fish_portwarden_using_subcommand generate; and __fish_seen_subcommand_from man" -s q -l quiet -d 'Only errors'
complete -c portwarden -n "__fish_portwarden_using_subcommand generate; and __fish_seen_subcommand_from man" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c portwarden -n "__fish_portwarden_using_subcommand generate; and __fish_seen_subcommand_from completions" -l config -d 'Config file (default: $PORTWARDEN_CONFIG, else /etc/portwarden/portwarden.toml if it exists)' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand generate; and __fish_seen_subcommand_from completions" -l state-dir -d 'State directory (default: $PORTWARDEN_STATE_DIR, else the config\'s state_dir)' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand generate; and __fish_seen_subcommand_from completions" -l log-format -d 'Log messages as text (coloured only on a terminal) or as JSON lines' -r -f -a "text\t'One line per message; colours only when standard error is a terminal and NO_COLOR is unset'
json\t'One JSON object per message (timestamp, level, fields, target), never coloured'"
complete -c portwarden -n "__fish_portwarden_using_subcommand generate; and __fish_seen_subcommand_from completions" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides'
complete -c portwarden -n "__fish_portwarden_using_subcommand generate; and __fish_seen_subcommand_from completions" -s q -l quiet -d 'Only errors'
complete -c portwarden -n "__fish_portwarden_using_subcommand generate; and __fish_seen_subcommand_from completions" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c portwarden -n "__fish_portwarden_using_subcommand generate; and __fish_seen_subcommand_from package" -l config -d 'Config file (default: $PORTWARDEN_CONFIG, else /etc/portwarden/portwarden.toml if it exists)' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand generate; and __fish_seen_subcommand_from package" -l state-dir -d 'State directory (default: $PORTWARDEN_STATE_DIR, else the config\'s state_dir)' -r -F
complete -c portwarden -n "__fish_portwarden_using_subcommand generate; and __fish_seen_subcommand_from package" -l log-format -d 'Log messages as text (coloured only on a terminal) or as JSON lines' -r -f -a "text\t'One line per message; colours only when standard error is a terminal and NO_COLOR is unset'
json\t'One JSON object per message (timestamp, level, fields, target), never coloured'"
complete -c portwarden -n "__fish_portwarden_using_subcommand generate; and __fish_seen_subcommand_from package" -s v -l verbose -d 'More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides'
complete -c portwarden -n "__fish_portwarden_using_subcommand generate; and __fish_seen_subcommand_from package" -s q -l quiet -d 'Only errors'
complete -c portwarden -n "__fish_portwarden_using_subcommand generate; and __fish_seen_subcommand_from package" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c portwarden -n "__fish_portwarden_using_subcommand generate; and __fish_seen_subcommand_from help" -f -a "man" -d 'Man pages, section 8 (portwarden.8, portwarden-scan.8, ...)'
complete -c portwarden -n "__fish_portwarden_using_subcommand generate; and __fish_seen_subcommand_from help" -f -a "completions" -d 'Completions for bash, zsh and fish'
complete -c portwarden -n "__fish_portwarden_using_subcommand generate; and __fish_seen_subcommand_from help" -f -a "package" -d 'The systemd unit and the (commented-out) cron file the Debian package installs'
complete -c portwarden -n "__fish_portwarden_using_subcommand generate; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c portwarden -n "__fish_portwarden_using_subcommand help; and not __fish_seen_subcommand_from scan setup teardown ban unban import list status run daemon cron systemd fail2ban demo config generate help" -f -a "scan" -d 'Read log files offline and report scanners; bans nothing'
complete -c portwarden -n "__fish_portwarden_using_subcommand help; and not __fish_seen_subcommand_from scan setup teardown ban unban import list status run daemon cron systemd fail2ban demo config generate help" -f -a "setup" -d 'Create or refresh the nftables table, sets, LOG and drop rules'
complete -c portwarden -n "__fish_portwarden_using_subcommand help; and not __fish_seen_subcommand_from scan setup teardown ban unban import list status run daemon cron systemd fail2ban demo config generate help" -f -a "teardown" -d 'Remove portwarden\'s nftables table and nothing else'
complete -c portwarden -n "__fish_portwarden_using_subcommand help; and not __fish_seen_subcommand_from scan setup teardown ban unban import list status run daemon cron systemd fail2ban demo config generate help" -f -a "ban" -d 'Ban an address or prefix by hand'
complete -c portwarden -n "__fish_portwarden_using_subcommand help; and not __fish_seen_subcommand_from scan setup teardown ban unban import list status run daemon cron systemd fail2ban demo config generate help" -f -a "unban" -d 'Lift a ban'
complete -c portwarden -n "__fish_portwarden_using_subcommand help; and not __fish_seen_subcommand_from scan setup teardown ban unban import list status run daemon cron systemd fail2ban demo config generate help" -f -a "import" -d 'Import the seed lab\'s blocked_ips.txt (one address per line)'
complete -c portwarden -n "__fish_portwarden_using_subcommand help; and not __fish_seen_subcommand_from scan setup teardown ban unban import list status run daemon cron systemd fail2ban demo config generate help" -f -a "list" -d 'Bans in the kernel set and in the store, side by side'
complete -c portwarden -n "__fish_portwarden_using_subcommand help; and not __fish_seen_subcommand_from scan setup teardown ban unban import list status run daemon cron systemd fail2ban demo config generate help" -f -a "status" -d 'What portwarden is doing: table, sets, store, sources'
complete -c portwarden -n "__fish_portwarden_using_subcommand help; and not __fish_seen_subcommand_from scan setup teardown ban unban import list status run daemon cron systemd fail2ban demo config generate help" -f -a "run" -d '`run --once`: one incremental pass over every source, then exit (cron mode)'
complete -c portwarden -n "__fish_portwarden_using_subcommand help; and not __fish_seen_subcommand_from scan setup teardown ban unban import list status run daemon cron systemd fail2ban demo config generate help" -f -a "daemon" -d 'Follow the sources and ban within milliseconds'
complete -c portwarden -n "__fish_portwarden_using_subcommand help; and not __fish_seen_subcommand_from scan setup teardown ban unban import list status run daemon cron systemd fail2ban demo config generate help" -f -a "cron" -d 'Install, remove or print /etc/cron.d/portwarden'
complete -c portwarden -n "__fish_portwarden_using_subcommand help; and not __fish_seen_subcommand_from scan setup teardown ban unban import list status run daemon cron systemd fail2ban demo config generate help" -f -a "systemd" -d 'Install or print the systemd unit for the daemon'
complete -c portwarden -n "__fish_portwarden_using_subcommand help; and not __fish_seen_subcommand_from scan setup teardown ban unban import list status run daemon cron systemd fail2ban demo config generate help" -f -a "fail2ban" -d 'Write or print the Fail2Ban filter, jail and action (the alternative method)'
complete -c portwarden -n "__fish_portwarden_using_subcommand help; and not __fish_seen_subcommand_from scan setup teardown ban unban import list status run daemon cron systemd fail2ban demo config generate help" -f -a "demo" -d 'The seed lab in throwaway network namespaces: scan, detect, ban, scan again'
complete -c portwarden -n "__fish_portwarden_using_subcommand help; and not __fish_seen_subcommand_from scan setup teardown ban unban import list status run daemon cron systemd fail2ban demo config generate help" -f -a "config" -d 'Check the config file, show the effective values, or print the commented default'
complete -c portwarden -n "__fish_portwarden_using_subcommand help; and not __fish_seen_subcommand_from scan setup teardown ban unban import list status run daemon cron systemd fail2ban demo config generate help" -f -a "generate" -d 'Write the man pages or the shell completions (for packagers)'
complete -c portwarden -n "__fish_portwarden_using_subcommand help; and not __fish_seen_subcommand_from scan setup teardown ban unban import list status run daemon cron systemd fail2ban demo config generate help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c portwarden -n "__fish_portwarden_using_subcommand help; and __fish_seen_subcommand_from cron" -f -a "install" -d 'Write /etc/cron.d/portwarden: `portwarden run --once` every minute, as root'
complete -c portwarden -n "__fish_portwarden_using_subcommand help; and __fish_seen_subcommand_from cron" -f -a "remove" -d 'Delete /etc/cron.d/portwarden, if portwarden wrote it'
complete -c portwarden -n "__fish_portwarden_using_subcommand help; and __fish_seen_subcommand_from cron" -f -a "print" -d 'Print the file `install` would write'
complete -c portwarden -n "__fish_portwarden_using_subcommand help; and __fish_seen_subcommand_from systemd" -f -a "install" -d 'Write portwarden.service for `portwarden daemon`'
complete -c portwarden -n "__fish_portwarden_using_subcommand help; and __fish_seen_subcommand_from systemd" -f -a "print" -d 'Print the unit `install` would write'
complete -c portwarden -n "__fish_portwarden_using_subcommand help; and __fish_seen_subcommand_from fail2ban" -f -a "print" -d 'Show the files on stdout, each preceded by its path; writes nothing'
complete -c portwarden -n "__fish_portwarden_using_subcommand help; and __fish_seen_subcommand_from fail2ban" -f -a "install" -d 'Write the files into Fail2Ban\'s config directory'
complete -c portwarden -n "__fish_portwarden_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "check" -d 'Check the config file: exit 0, or list every problem with file, line, key and the fix (exit 1)'
complete -c portwarden -n "__fish_portwarden_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "show" -d 'The effective value of every key and where it came from (default, file, environment, flag)'
complete -c portwarden -n "__fish_portwarden_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "print-default" -d 'Print the commented example file: every key at its default, with the reasoning'
complete -c portwarden -n "__fish_portwarden_using_subcommand help; and __fish_seen_subcommand_from generate" -f -a "man" -d 'Man pages, section 8 (portwarden.8, portwarden-scan.8, ...)'
complete -c portwarden -n "__fish_portwarden_using_subcommand help; and __fish_seen_subcommand_from generate" -f -a "completions" -d 'Completions for bash, zsh and fish'
complete -c portwarden -n "__fish_portwarden_using_subcommand help; and __fish_seen_subcommand_from generate" -f -a "package" -d 'The systemd unit and the (commented-out) cron file the Debian package installs'
