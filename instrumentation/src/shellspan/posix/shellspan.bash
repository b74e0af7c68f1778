# shellcheck shell=bash
# shellspan bash hooks -- printed by `shellspan init bash`; static, safe to source.
# A command starts at the first DEBUG trap after PS0 (bash >= 4.4; before, after the prompt):
# its text is read from the history list and one record goes to the agent. It ends when
# PROMPT_COMMAND runs: a second record. Signals and the terminal are left to bash: no trap but
# EXIT (chained with an existing one) and DEBUG (likewise). See docs/posix-shells.md.
# Does nothing in non-interactive shells or when SHELLSPAN_DISABLED=1.
if [[ $- == *i* && -z ${__shellspan_on-} && ${SHELLSPAN_DISABLED-} != 1 ]] \
   && (( BASH_VERSINFO[0] * 100 + BASH_VERSINFO[1] >= 401 )); then
__shellspan_on=1 __shellspan_hasps0=1
if (( BASH_VERSINFO[0] * 100 + BASH_VERSINFO[1] < 404 )) || [[ ${SHELLSPAN_BASH_DEBUG_TRAP-} == 1 ]]
then __shellspan_hasps0=0  # no PS0: the DEBUG trap is armed at the end of PROMPT_COMMAND
fi
__shellspan_bin=${SHELLSPAN_BIN:-@BIN@}
__shellspan_fd=-1 __shellspan_apid=0 __shellspan_retry=0 __shellspan_starting=0 __shellspan_q=()
__shellspan_restart=0 __shellspan_seq=0 __shellspan_done=0 __shellspan_cwd=$PWD __shellspan_e=''
__shellspan_t0=0 __shellspan_armed=0 __shellspan_began=0 __shellspan_bg=0 __shellspan_ml=0 __shellspan_pst=0
__shellspan_hnum=0 __shellspan_priv=0 __shellspan_uhc='' __shellspan_uhi='' __shellspan_seen=-1
__shellspan_hf='' __shellspan_lf='' __shellspan_proc=0 __shellspan_dir='' __shellspan_why=''
__shellspan_txt='' __shellspan_fl='' __shellspan_brk='' __shellspan_r='' __shellspan_chain=0
[[ -d /proc/$$ ]] && __shellspan_proc=1

# The runtime directory: the rule of shellspan/posix/runtime.py (a test holds this to it).
# A candidate is used if it is, or can be created as, a directory of this user that is not a
# symbolic link; the agent closes it to others (0700). The first shell creates it (one fork).
__shellspan_usable() {  # $1 directory; sets __shellspan_why when it cannot be used
  [[ -e $1 || -L $1 ]] || command mkdir -m 700 -p -- "$1" 2>/dev/null
  if [[ -L $1 ]]; then __shellspan_why='is a symbolic link'
  elif [[ ! -d $1 ]]; then __shellspan_why='cannot be created or reached'
  elif [[ ! -O $1 ]]; then __shellspan_why='belongs to another user'
  elif [[ ! -w $1 || ! -x $1 ]]; then __shellspan_why='is not writable'
  else return 0; fi
  return 1
}
__shellspan_choose_dir() {
  local want home=${HOME-} host=${HOSTNAME-} c why=''
  if [[ -n ${SHELLSPAN_RUNTIME_DIR-} ]]; then want=$SHELLSPAN_RUNTIME_DIR
  elif [[ -n ${XDG_RUNTIME_DIR-} && -d $XDG_RUNTIME_DIR ]]; then want=$XDG_RUNTIME_DIR/shellspan
  else want=/tmp/shellspan-$UID; fi
  if __shellspan_usable "$want"; then __shellspan_dir=$want; return; fi
  why=$__shellspan_why
  if (( BASH_VERSINFO[0] * 100 + BASH_VERSINFO[1] >= 404 )); then
    # The home directory from the password database: an inherited $HOME may be another user's.
    c='\u'; c=${c@P}; host='\H'; host=${host@P}
    [[ $c =~ ^[A-Za-z0-9._][A-Za-z0-9._-]*$ ]] && eval "home=~$c"
  fi
  for c in ${XDG_RUNTIME_DIR:+"$XDG_RUNTIME_DIR/shellspan"} "/tmp/shellspan-$UID" \
           ${home:+"$home/.local/state/shellspan/run-$host"}; do
    [[ $c != "$want" && ( $c != "${XDG_RUNTIME_DIR-}/shellspan" || -d $XDG_RUNTIME_DIR ) ]] \
      && __shellspan_usable "$c" && { __shellspan_dir=$c; break; }
  done
  c='nothing is recorded'
  [[ -n $__shellspan_dir ]] && c="recording through $__shellspan_dir"
  printf 'shellspan: not using %s: it %s; %s\n' "$want" "$why" "$c" >&2
}
__shellspan_choose_dir
# A file of this shell in the runtime directory, created 0600 (a redirection cannot set a
# mode: the umask, read from /proc, is 077 while it is created), never a link or another's.
__shellspan_private() {  # $1 file
  [[ -n $__shellspan_dir && ! -L $1 ]] || return 1
  if [[ ! -e $1 ]]; then
    local k v um=''
    { while read -r k v; do [[ $k == Umask: ]] && { um=$v; break; }; done < /proc/$$/status
    } 2>/dev/null
    [[ -n $um ]] && umask 077
    { : >> "$1"; } 2>/dev/null
    [[ -n $um ]] && umask "$um"
  fi
  [[ -f $1 && -O $1 && ! -L $1 ]]
}
# h.PID: builtins' output is read back through it (no fork); l.PID: where a multi-line
# command's lines end (written by PS2's command substitution).
__shellspan_private "$__shellspan_dir/h.$$" && __shellspan_hf=$__shellspan_dir/h.$$
# Ids. The session's are random (SRANDOM in bash >= 5.1, else RANDOM, drawn once here); a span id
# is a random half of this session and a counter spread over the other half: unique in the
# session, with no system call (SRANDOM makes one) and without drawing on the user's RANDOM.
if (( BASH_VERSINFO[0] * 100 + BASH_VERSINFO[1] >= 501 )); then
  __shellspan_rnd() { printf -v __shellspan_r '%08x%08x' "$SRANDOM" "$SRANDOM"; }
else
  __shellspan_rnd() { printf -v __shellspan_r '%04x%04x%04x%04x' "$RANDOM" "$RANDOM" "$RANDOM" \
    "$(( (RANDOM ^ $$) | 1 ))"; }
fi
__shellspan_rnd; __shellspan_half=${__shellspan_r:0:8} __shellspan_n=0
__shellspan_id() {
  printf -v __shellspan_r '%s%08x' "$__shellspan_half" \
    "$(( (++__shellspan_n * 2654435761) & 0xffffffff ))"
}
if (( BASH_VERSINFO[0] >= 5 )); then
  __shellspan_now() { __shellspan_r=${EPOCHREALTIME/[.,]/}; }
  # shellcheck disable=SC2016  # expanded when PS0 is displayed: start time, arm the trap, and
  # $? (the status of the line before, when it is a pasted one with no prompt between)
  __shellspan_ps0='${__shellspan_e[__shellspan_t0=${EPOCHREALTIME/[.,]/},__shellspan_armed=1,__shellspan_pst=$?]-}'
else
  __shellspan_now() { printf -v __shellspan_r '%(%s)T000000' -1; }
  # shellcheck disable=SC2016
  __shellspan_ps0='${__shellspan_e[__shellspan_t0=\D{%s}000000,__shellspan_armed=1,__shellspan_pst=$?]-}'
fi
# shellcheck disable=SC2016  # expanded when PS2 is displayed
__shellspan_ps2='${__shellspan_e[__shellspan_ml=1]-}$(__shellspan_lines)'

# --- talking to the agent ----------------------------------------------------------------------
# The agent is up when its pid (from agent.pid) is alive; the FIFO is opened read-write, so
# opening never blocks and a write never raises SIGPIPE. bash cannot open a descriptor
# non-blocking, so a full pipe would block: records are written only while the agent was seen
# alive within the last second (the pipe holds a megabyte: thousands of records), and
# otherwise queue in the shell (spilled to q.PID beyond 1000 and at exit). A shell starts a new
# agent when the one it used is gone (after a start that brought none up, not again for 10 s).
__shellspan_up() {
  if (( __shellspan_proc )); then [[ -d /proc/$__shellspan_apid ]]
  else kill -0 "$__shellspan_apid" 2>/dev/null; fi
}
__shellspan_start_agent() {
  [[ -n $__shellspan_dir && ${SHELLSPAN_AGENT_AUTOSTART-1} != 0 ]] || return
  (( SECONDS >= __shellspan_restart )) || return
  __shellspan_restart=$(( SECONDS + 10 )) __shellspan_starting=$(( SECONDS + 5 ))
  ( SHELLSPAN_RUNTIME_DIR=$__shellspan_dir "$__shellspan_bin" agent --daemon </dev/null >/dev/null 2>&1 & )
}
__shellspan_connect() {
  (( SECONDS >= __shellspan_retry )) || return 1
  # At most one attempt a second (records queue meanwhile), except while an agent this shell
  # started is coming up: then at every prompt, so the first commands are not held back.
  (( SECONDS < __shellspan_starting )) || __shellspan_retry=$(( SECONDS + 1 ))
  local pid=''
  # Only a FIFO of this user (not a link) in the directory chosen above.
  [[ -n $__shellspan_dir && -p $__shellspan_dir/events && ! -L $__shellspan_dir/events \
     && -O $__shellspan_dir/events && -r $__shellspan_dir/agent.pid ]] \
    && { read -r pid < "$__shellspan_dir/agent.pid"; } 2>/dev/null
  __shellspan_apid=${pid//[!0-9]/}
  if [[ -z $__shellspan_apid ]] || ! __shellspan_up; then
    __shellspan_apid=0
    __shellspan_start_agent
    return 1
  fi
  if (( __shellspan_fd < 0 )) || ! [[ /dev/fd/$__shellspan_fd -ef $__shellspan_dir/events ]]
  then
    (( __shellspan_fd < 0 )) || exec {__shellspan_fd}>&-
    { exec {__shellspan_fd}<>"$__shellspan_dir/events"; } 2>/dev/null || {
      __shellspan_fd=-1; return 1; }
  fi
  __shellspan_retry=0 __shellspan_restart=0  # an agent came up: the next may start at once
}
__shellspan_write() {
  local r=$1
  if (( ${#r} <= 900 )); then printf '%s\0' "$r" >&"$__shellspan_fd"; return; fi
  while (( ${#r} > 900 )); do  # keep every write below PIPE_BUF so writes stay atomic
    printf 'T\037%s\037%s\0' "$$" "${r:0:900}" >&"$__shellspan_fd"
    r=${r:900}
  done
  printf 'L\037%s\037%s\0' "$$" "$r" >&"$__shellspan_fd"
}
__shellspan_spill() {  # the queue to q.PID, for the next agent
  if (( ${#__shellspan_q[@]} )) && __shellspan_private "$__shellspan_dir/q.$$"; then
    { printf '%s\0' "${__shellspan_q[@]}" >> "$__shellspan_dir/q.$$"; } 2>/dev/null
  fi
  __shellspan_q=()
}
# The hooks write a short record themselves when the agent was seen alive this second and
# nothing is queued; everything else comes here.
__shellspan_send() {
  # The runtime directory may go (a tmpfs emptied at logout): no more records, and no errors.
  [[ -d $__shellspan_dir ]] || { __shellspan_hf='' __shellspan_lf='' __shellspan_dir=''; return; }
  if (( __shellspan_apid > 0 && __shellspan_fd >= 0 )) && __shellspan_up \
     || __shellspan_connect; then
    __shellspan_seen=$SECONDS
    if (( ${#__shellspan_q[@]} )); then
      local q; for q in "${__shellspan_q[@]}"; do __shellspan_write "$q"; done
      __shellspan_q=()
    fi
    __shellspan_write "$1"
  else
    __shellspan_seen=-1
    __shellspan_q+=("$1")
    (( ${#__shellspan_q[@]} < 1000 )) || __shellspan_spill
  fi
}

# --- the command's text ------------------------------------------------------------------------
# Read from the history list, whatever the user's settings keep out of it. While a line is
# read, HISTCONTROL loses ignorespace (ignoreboth becomes ignoredups) and HISTIGNORE is set
# aside; both are put back before the command runs, and the entry is then taken out again if
# the user's settings would not have let it in (`history -d`; with HISTIGNORE, bash decides:
# `history -s` adds it back under the user's settings). So their history stays as it would
# have been. A line ignoredups kept out is a repeat of the entry before it: that is its text.
# `set +o history` cannot be undone from a prompt hook (bash restores it): the text is then
# what bash runs first (`$BASH_COMMAND`).
#
# The hooks that run at every command are kept small: bash copies a function's body each
# time it calls it, and interprets every statement; what is seldom needed is in other functions.
__shellspan_text() {  # $1 entry number, $2 its text, $3 the text when it is not in the history
  __shellspan_txt='' __shellspan_fl='' __shellspan_brk=''
  if (( __shellspan_priv )); then
    __shellspan_priv=0 HISTCONTROL=$__shellspan_uhc
    [[ -z $__shellspan_uhi ]] || HISTIGNORE=$__shellspan_uhi
  fi
  if [[ -n $1 ]] && (( $1 > __shellspan_hnum )); then
    __shellspan_txt=$2 __shellspan_hnum=$1
    if [[ $2 == [[:space:]]* && ( ${HISTCONTROL-} == *ignorespace* || ${HISTCONTROL-} == *ignoreboth* ) ]]
    then builtin history -d "$1"
    elif [[ -n ${HISTIGNORE-} ]]; then builtin history -d "$1"; builtin history -s -- "$2"
    fi
  elif [[ -n $1 && ${HISTCONTROL-} == *ignore[db]* && -o history ]]; then __shellspan_txt=$2
  else __shellspan_fl=u __shellspan_txt=${3-}
  fi
  # A leading space asks bash to keep a command out of the history: recorded, and marked.
  [[ $__shellspan_txt == [[:space:]]* && ( ${HISTCONTROL-} == *ignorespace* \
     || ${HISTCONTROL-} == *ignoreboth* || -n ${__bp_ignorespace-} ) ]] && {
    __shellspan_fl=s
    [[ ${SHELLSPAN_HIDDEN_COMMANDS-record} == redact ]] && __shellspan_txt=''
  }
  if (( __shellspan_ml )); then  # where the lines of a multi-line command ended
    __shellspan_ml=0
    if [[ -n $__shellspan_lf ]]; then
      { IFS= read -r -d '' __shellspan_brk < "$__shellspan_lf"; : > "$__shellspan_lf"; } 2>/dev/null
    fi
  fi
}
__shellspan_line() {  # the line just read (seldom paths): __shellspan_txt, _fl, _brk
  local h='' n
  { HISTTIMEFORMAT='' builtin history 1; printf '\0'; } 1<>"$__shellspan_hf"
  IFS= read -r -d '' h < "$__shellspan_hf"
  n=${h%%[!0-9 ]*} h=${h#*[0-9][ *] }
  __shellspan_text "$n" "${h%$'\n'}"
}
# PS2's command substitution (a subshell, before each continuation line): note where the
# history entry of the command being typed ends, and whether it ends with a backslash (bash
# joins the lines in its history; the agent puts the line breaks back from these notes).
__shellspan_lines() {
  local h n
  [[ -n $__shellspan_lf ]] || return 0
  { HISTTIMEFORMAT='' builtin history 1; printf '\0'; } 1<>"$__shellspan_hf"
  IFS= read -r -d '' h < "$__shellspan_hf"
  n=${h#"${h%%[![:space:]]*}"}; n=${n%%[!0-9]*}
  [[ -n $n ]] && (( n > __shellspan_hnum )) || return 0
  h=${h#*[0-9][ *] }; h=${h%$'\n'}
  [[ $h == *\\ && $h != *\\\\ ]] && n=b || n=''
  printf '%s%s ' "${#h}" "$n" >> "$__shellspan_lf"
} 2>/dev/null

# --- the hooks ---------------------------------------------------------------------------------
# The DEBUG trap: `[[ $__shellspan_armed == 0 ]] || __shellspan_begin "$_"` (which keeps $_,
# $? and PIPESTATUS as they were), or, chained with another DEBUG trap, this (which gives it $?).
__shellspan_dbg() {  # $1 $?, $2 $_
  if (( __shellspan_armed )); then
    if (( __shellspan_hasps0 )); then __shellspan_begin; else __shellspan_begin_nops0; fi
  fi
  return "$1"
}
# The first DEBUG trap after PS0 armed it: the command starts; its line is in the history. The
# common case is inlined (a short line that entered the history as typed); the rest is in
# __shellspan_text.
__shellspan_begin() {
  [[ -n $__shellspan_hf ]] || { __shellspan_armed=0; return 0; }  # no runtime directory
  local h='' n
  { HISTTIMEFORMAT='' builtin history 1; printf '\0'; } 1<>"$__shellspan_hf"
  IFS= read -r -d '' h < "$__shellspan_hf"
  n=${h%%[!0-9 ]*} h=${h#*[0-9][ *] } __shellspan_armed=0
  (( ! __shellspan_priv )) || __shellspan_priv=0 HISTCONTROL=$__shellspan_uhc
  h=${h%$'\n'}
  if (( n > __shellspan_hnum && ! __shellspan_ml && ! __shellspan_began )) \
     && [[ $h != [[:space:]]* && -z $__shellspan_uhi ]]; then
    __shellspan_hnum=$n
    h="B"$'\037'"$$"$'\037'"$__shellspan_sid"$'\037'"$(( __shellspan_began = ++__shellspan_seq ))"$'\037'"$__shellspan_span"$'\037'"$__shellspan_t0"$'\037'"$PWD"$'\037\037\037'"$h"
  else
    (( ! __shellspan_began )) || __shellspan_pasted
    (( __shellspan_t0 )) || __shellspan_t0=${EPOCHREALTIME/[.,]/}
    __shellspan_priv=${__shellspan_uhi:+1}
    __shellspan_text "$n" "$h" "$BASH_COMMAND"  # (in a DEBUG trap: what bash runs)
    h="B"$'\037'"$$"$'\037'"$__shellspan_sid"$'\037'"$(( __shellspan_began = ++__shellspan_seq ))"$'\037'"$__shellspan_span"$'\037'"$__shellspan_t0"$'\037'"$PWD"$'\037'"$__shellspan_fl"$'\037'"$__shellspan_brk"$'\037'"$__shellspan_txt"
  fi
  if (( __shellspan_fd >= 0 && SECONDS == __shellspan_seen && ${#h} <= 900
        && ! ${#__shellspan_q[@]} )); then
    printf '%s\0' "$h" >&"$__shellspan_fd"
  else
    __shellspan_send "$h"
  fi
  return 0
}
# bash < 4.4 has no PS0: the DEBUG trap is armed at the end of PROMPT_COMMAND, so the first one
# after an empty line is PROMPT_COMMAND itself; the start time is taken here.
__shellspan_begin_nops0() {
  [[ $BASH_COMMAND != __shellspan_precmd* ]] || { __shellspan_armed=0; return 0; }
  __shellspan_now
  __shellspan_t0=$__shellspan_r
  __shellspan_begin
}
__shellspan_pasted() {  # armed again with no prompt between: a pasted line ended, one begins
  __shellspan_send "E"$'\037'"$$"$'\037'"$__shellspan_sid"$'\037'"$__shellspan_began"$'\037'"${EPOCHREALTIME/[.,]/}"$'\037'"$__shellspan_pst"$'\037'
  __shellspan_id
  __shellspan_span=$__shellspan_r
  TRACEPARENT=00-$__shellspan_sid-$__shellspan_span-01
}
__shellspan_precmd() {
  local st=$? ps=${PIPESTATUS[*]}
  if (( __shellspan_began )); then
    # No pipeline status for a line that started a background job (bash leaves PIPESTATUS as
    # it was) or one that does not end with $? (a function definition runs no pipeline).
    [[ $__shellspan_bg == "${!:-0}" && ( ${ps##* } == "$st" || -o pipefail ) ]] || ps=''
    ps="E"$'\037'"$$"$'\037'"$__shellspan_sid"$'\037'"$__shellspan_began"$'\037'"${EPOCHREALTIME/[.,]/}"$'\037'"$st"$'\037'"$ps"
    if (( __shellspan_fd >= 0 && SECONDS == __shellspan_seen && ! ${#__shellspan_q[@]} )); then
      printf '%s\0' "$ps" >&"$__shellspan_fd"
    else
      __shellspan_send "$ps"
    fi
    printf -v __shellspan_span '%s%08x' "$__shellspan_half" \
      "$(( (++__shellspan_n * 2654435761) & 0xffffffff ))"
    TRACEPARENT=00-$__shellspan_sid-$__shellspan_span-01 __shellspan_began=0
  elif (( __shellspan_armed || __shellspan_ml || __shellspan_priv )); then
    __shellspan_seldom "$st" "$ps"
  fi
  __shellspan_armed=0 __shellspan_cwd=$PWD __shellspan_bg=${!:-0}
  (( ! __shellspan_chain )) || __shellspan_boot
  [[ ${PS0-} == *__shellspan_armed* && ${PS2-} == *__shellspan_lines* ]] || __shellspan_prompts
  if [[ ${HISTCONTROL-} == *ignore[sb]* || -n ${HISTIGNORE-} ]]; then  # see above
    __shellspan_priv=1 __shellspan_uhc=${HISTCONTROL-} __shellspan_uhi=${HISTIGNORE-}
    ps=${HISTCONTROL//ignorespace/}
    HISTCONTROL=${ps//ignoreboth/ignoredups}
    [[ -z $__shellspan_uhi ]] || HISTIGNORE=''
  else
    __shellspan_uhi=''
  fi
  __shellspan_hnum=$(( HISTCMD - 1 ))  # the last entry: a line read later is above it
  return "$st"
}
__shellspan_prompts() {  # put our part back in front of PS0 and PS2 (another tool replaced them)
  (( ! __shellspan_hasps0 )) || [[ ${PS0-} == *__shellspan_armed* ]] || PS0=$__shellspan_ps0${PS0-}
  [[ ${PS2-} == *__shellspan_lines* || -z $__shellspan_lf ]] || PS2=$__shellspan_ps2${PS2-}
}
__shellspan_seldom() {  # the prompt after a line that ran no DEBUG trap, or never ran
  __shellspan_now
  if (( __shellspan_armed )); then  # it ran: ( subshell ), f() { ...; }
    __shellspan_chain=1  # (or another tool replaced the DEBUG trap)
    __shellspan_line
    __shellspan_send "C"$'\037'"$$"$'\037'"$__shellspan_sid"$'\037'"$(( ++__shellspan_seq ))"$'\037'"$__shellspan_span"$'\037'"$__shellspan_t0"$'\037'"$__shellspan_r"$'\037'"$1"$'\037'"$2"$'\037'"$__shellspan_cwd"$'\037'"$__shellspan_fl"$'\037'"$__shellspan_brk"$'\037'"$__shellspan_txt"
    __shellspan_id
    __shellspan_span=$__shellspan_r
    TRACEPARENT=00-$__shellspan_sid-$__shellspan_span-01
  elif (( __shellspan_priv && HISTCMD - 1 > __shellspan_hnum )); then
    __shellspan_line  # a line that never ran (a syntax error, Ctrl-C): only its history entry
  elif (( __shellspan_ml )); then  # notes of a multi-line command that never ran
    __shellspan_ml=0
    [[ -n $__shellspan_lf ]] && { : > "$__shellspan_lf"; } 2>/dev/null
  fi
  if (( __shellspan_priv )); then  # a line that added nothing to the history
    __shellspan_priv=0 HISTCONTROL=$__shellspan_uhc
    [[ -z $__shellspan_uhi ]] || HISTIGNORE=$__shellspan_uhi
  fi
}
# The DEBUG trap is chained with an existing one. A function (or sourced file) cannot see an
# existing DEBUG trap, so this runs from PROMPT_COMMAND at top level at the first prompt, and
# again when a command ran without the trap firing (another tool may have replaced it).
# shellcheck disable=SC2016  # top-level code, run from PROMPT_COMMAND
__shellspan_boot_code='{ trap -p DEBUG; printf "\0"; } 1<>"$__shellspan_hf" 2>/dev/null; __shellspan_trap; trap -- "$__shellspan_r" DEBUG; __shellspan_unboot'
__shellspan_trap() {  # the DEBUG trap to install, from the current one (read into h.PID)
  local t=''
  { IFS= read -r -d '' t < "$__shellspan_hf"; } 2>/dev/null
  t=${t#trap -- }; t=${t%$'\n'}; t=${t% DEBUG}
  [[ -n $t ]] && eval "t=$t"
  # shellcheck disable=SC2016  # expanded when the trap runs
  if [[ $t == *__shellspan_* ]]; then __shellspan_r=$t  # still ours
  elif [[ -n $t ]]; then __shellspan_r='__shellspan_dbg "$?" "$_"; '$t
  elif (( __shellspan_hasps0 )); then __shellspan_r='[[ $__shellspan_armed == 0 ]] || __shellspan_begin "$_"'
  else __shellspan_r='[[ $__shellspan_armed == 0 ]] || __shellspan_begin_nops0 "$_"'; fi
}
__shellspan_boot() {  # put the boot code in front of PROMPT_COMMAND (once)
  __shellspan_chain=0
  [[ -n $__shellspan_hf ]] || return 0
  # shellcheck disable=SC2128,SC2178
  if (( BASH_VERSINFO[0] * 100 + BASH_VERSINFO[1] >= 501 )); then
    [[ ${PROMPT_COMMAND[0]-} == "$__shellspan_boot_code" ]] \
      || PROMPT_COMMAND=("$__shellspan_boot_code" "${PROMPT_COMMAND[@]}")
  else
    [[ $PROMPT_COMMAND == "$__shellspan_boot_code; "* ]] \
      || PROMPT_COMMAND="$__shellspan_boot_code; $PROMPT_COMMAND"
  fi
}
__shellspan_unboot() {
  # shellcheck disable=SC2128,SC2178
  if (( BASH_VERSINFO[0] * 100 + BASH_VERSINFO[1] >= 501 )); then
    [[ ${PROMPT_COMMAND[0]-} != "$__shellspan_boot_code" ]] \
      || PROMPT_COMMAND=("${PROMPT_COMMAND[@]:1}")
  else
    PROMPT_COMMAND=${PROMPT_COMMAND#"$__shellspan_boot_code; "}
  fi
}
# The exit hook: why the shell ends, as far as it can tell. The terminal gone (no descriptor
# is a terminal any more): hangup, and bash dies of SIGHUP (129). `exit`/`logout` running:
# exit. Another command running: a signal ended the shell. Otherwise: end of input.
__shellspan_exit() {
  local st=$? how=eof
  (( __shellspan_done || BASHPID != $$ )) && return "$st"  # not in subshells
  __shellspan_done=1
  if ! [[ -t 0 || -t 1 || -t 2 ]]; then how=hangup st=129
  elif [[ $BASH_COMMAND == exit || $BASH_COMMAND == exit[[:space:]]* \
          || $BASH_COMMAND == logout || $BASH_COMMAND == logout[[:space:]]* ]]; then how='exit'
  elif (( __shellspan_began )); then how=signal
  fi
  __shellspan_now
  __shellspan_retry=0
  __shellspan_send "X"$'\037'"$$"$'\037'"$__shellspan_sid"$'\037'"$__shellspan_r"$'\037'"$st"$'\037'"$how"
  (( ${#__shellspan_q[@]} )) && __shellspan_spill
  return "$st"
}

__shellspan_rnd; __shellspan_sid=$__shellspan_r; __shellspan_rnd; __shellspan_sid+=$__shellspan_r
__shellspan_rnd; __shellspan_root=$__shellspan_r; __shellspan_id; __shellspan_span=$__shellspan_r
__shellspan_now
__shellspan_q=("S"$'\037'"$$"$'\037'"$__shellspan_sid"$'\037'"$__shellspan_r"$'\037'"bash"$'\037'"$__shellspan_root"$'\037'"$PPID"$'\037'"${SHLVL-}"$'\037'"${TRACEPARENT-}"$'\037'"${USER-}"$'\037'"${SSH_CONNECTION:-${SSH_CLIENT-}}"$'\037'"$BASH_VERSION"$'\037'"$PWD")
export SHELLSPAN_SESSION_ID=$__shellspan_sid
export TRACEPARENT=00-$__shellspan_sid-$__shellspan_span-01
__shellspan_private "$__shellspan_dir/l.$$" && __shellspan_lf=$__shellspan_dir/l.$$
__shellspan_retry=0
__shellspan_connect
__shellspan_retry=0
# shellcheck disable=SC2128,SC2178
if (( ! __shellspan_hasps0 )); then  # bash < 4.4: armed by the last thing PROMPT_COMMAND does
  PROMPT_COMMAND="__shellspan_precmd${PROMPT_COMMAND:+; $PROMPT_COMMAND}; __shellspan_armed=1"
elif (( BASH_VERSINFO[0] * 100 + BASH_VERSINFO[1] >= 501 )); then
  # An element of its own: bash restores $? and PIPESTATUS before each element.
  PROMPT_COMMAND[0]=${PROMPT_COMMAND[0]-}
  PROMPT_COMMAND+=(__shellspan_precmd)
else  # bash < 5.1: PROMPT_COMMAND is a string
  PROMPT_COMMAND="__shellspan_precmd${PROMPT_COMMAND:+; $PROMPT_COMMAND}"
fi
__shellspan_boot
(( __shellspan_hasps0 )) && PS0=$__shellspan_ps0${PS0-}
[[ -z $__shellspan_lf ]] || PS2=$__shellspan_ps2${PS2-}
# Chain an existing EXIT trap (read through a file: no command substitution, no fork).
__shellspan_r=''
if [[ -n $__shellspan_hf ]]; then
  { trap -p EXIT; printf '\0'; } 2>/dev/null 1<>"$__shellspan_hf"
  { IFS= read -r -d '' __shellspan_r < "$__shellspan_hf"; } 2>/dev/null
else __shellspan_r=$(trap -p EXIT)  # no runtime directory (one fork)
fi
__shellspan_r=${__shellspan_r#trap -- }; __shellspan_r=${__shellspan_r%$'\n'}
__shellspan_r=${__shellspan_r% EXIT}
[[ -n $__shellspan_r ]] && eval "__shellspan_r=$__shellspan_r"
# shellcheck disable=SC2064  # the existing trap's text is embedded now, on purpose
trap "__shellspan_exit${__shellspan_r:+; $__shellspan_r}" EXIT
fi
