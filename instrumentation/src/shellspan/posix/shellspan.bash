# shellcheck shell=bash
# shellspan bash hooks -- printed by `shellspan init bash`; static, safe to source.
# bash >= 4.4: PS0 stamps the start of a command; bash 4.1-4.3: a DEBUG trap does (fallback).
# Does nothing in non-interactive shells or when SHELLSPAN_DISABLED=1.
if [[ $- == *i* && -z ${__shellspan_on-} && ${SHELLSPAN_DISABLED-} != 1 ]] \
   && (( BASH_VERSINFO[0] * 100 + BASH_VERSINFO[1] >= 401 )); then
__shellspan_on=1 __shellspan_debug=0 __shellspan_armed=0
if (( BASH_VERSINFO[0] * 100 + BASH_VERSINFO[1] < 404 )) || [[ ${SHELLSPAN_BASH_DEBUG_TRAP-} == 1 ]]
then __shellspan_debug=1
fi
__shellspan_bin=${SHELLSPAN_BIN:-@BIN@}
__shellspan_fd=-1 __shellspan_apid=0 __shellspan_retry=0 __shellspan_starting=0 __shellspan_q=() __shellspan_seq=0
__shellspan_t0=0 __shellspan_hnum='' __shellspan_done=0 __shellspan_cwd=$PWD __shellspan_e=''
__shellspan_hf='' __shellspan_proc=0 __shellspan_dir='' __shellspan_why=''
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
__shellspan_private "$__shellspan_dir/h.$$" && __shellspan_hf=$__shellspan_dir/h.$$
if (( BASH_VERSINFO[0] * 100 + BASH_VERSINFO[1] >= 501 )); then
  __shellspan_id() { printf -v __shellspan_r '%08x%08x' "$SRANDOM" "$SRANDOM"; }
else
  __shellspan_id() { printf -v __shellspan_r '%04x%04x%04x%04x' "$RANDOM" "$RANDOM" "$RANDOM" \
    "$(( (RANDOM ^ $$) | 1 ))"; }
fi
if (( BASH_VERSINFO[0] >= 5 )); then
  __shellspan_now() { __shellspan_r=${EPOCHREALTIME/[.,]/}; }
  # shellcheck disable=SC2016  # expanded when PS0 is displayed
  __shellspan_ps0='${__shellspan_e[__shellspan_t0=${EPOCHREALTIME/[.,]/}]-}'
else
  __shellspan_now() { printf -v __shellspan_r '%(%s)T000000' -1; }
  # shellcheck disable=SC2016
  __shellspan_ps0='${__shellspan_e[__shellspan_t0=\D{%s}000000]-}'
fi

# The agent is up when its pid (from agent.pid) is alive; the FIFO is opened read-write, so
# opening never blocks and a write never raises SIGPIPE. Writes happen only while the agent is
# alive (bash cannot open a descriptor non-blocking), so the pipe cannot fill up and block.
__shellspan_up() {
  if (( __shellspan_proc )); then [[ -d /proc/$__shellspan_apid ]]
  else kill -0 "$__shellspan_apid" 2>/dev/null; fi
}
__shellspan_connect() {
  (( SECONDS >= __shellspan_retry )) || return 1
  # At most one attempt a second (records queue meanwhile), except while an agent this shell
  # started is coming up: then at every prompt, so the first commands are not held back.
  (( SECONDS < __shellspan_starting )) || __shellspan_retry=$(( SECONDS + 1 ))
  # Only a FIFO of this user (not a link) in the directory chosen above.
  [[ -n $__shellspan_dir && -p $__shellspan_dir/events && ! -L $__shellspan_dir/events \
     && -O $__shellspan_dir/events && -r $__shellspan_dir/agent.pid ]] || return 1
  local pid=
  { read -r pid < "$__shellspan_dir/agent.pid"; } 2>/dev/null
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  __shellspan_apid=$pid
  __shellspan_up || { __shellspan_apid=0; return 1; }
  if (( __shellspan_fd < 0 )) || ! [[ /dev/fd/$__shellspan_fd -ef $__shellspan_dir/events ]]
  then
    (( __shellspan_fd < 0 )) || exec {__shellspan_fd}>&-
    { exec {__shellspan_fd}<>"$__shellspan_dir/events"; } 2>/dev/null || {
      __shellspan_fd=-1; return 1; }
  fi
  __shellspan_retry=0
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
__shellspan_send() {
  if (( __shellspan_proc && __shellspan_apid > 0 && __shellspan_fd >= 0 && ${#1} <= 900
        && ! ${#__shellspan_q[@]} )) && [[ -d /proc/$__shellspan_apid ]]; then
    printf '%s\0' "$1" >&"$__shellspan_fd"  # the common case, inlined
    return
  fi
  if (( __shellspan_apid > 0 && __shellspan_fd >= 0 )) && __shellspan_up \
     || __shellspan_connect; then
    if (( ${#__shellspan_q[@]} )); then
      local q; for q in "${__shellspan_q[@]}"; do __shellspan_write "$q"; done
      __shellspan_q=()
    fi
    __shellspan_write "$1"
  elif (( ${#__shellspan_q[@]} < 100 )); then
    __shellspan_q+=("$1")
  fi
}

# One record per command, written when the prompt comes back: PS0 stamped the start time; the
# text comes from the history list (every entry since the last prompt: a paste is one command),
# read through a small file in the runtime directory: written in place and NUL-terminated, never
# truncated (truncating makes some file systems flush at close, which costs a millisecond).
__shellspan_record() {  # $1 status, $2 pipeline statuses
  local t0=$__shellspan_t0 h='' num flags=h
  __shellspan_t0=0
  [[ -n $__shellspan_hf ]] || return 0  # no runtime directory: nothing is recorded
  if (( __shellspan_apid == 0 && ${#__shellspan_q[@]} >= 100 && SECONDS < __shellspan_retry ))
  then  # no agent for a while and the queue is full: do nothing until the next attempt
    __shellspan_hnum=
    return
  fi
  __shellspan_now
  { builtin fc -l -1; printf '\0'; } 2>/dev/null 1<>"$__shellspan_hf"
  { IFS= read -r -d '' h < "$__shellspan_hf"; } 2>/dev/null
  num=${h%%$'\t'*}
  if [[ -n $h && $num != "$__shellspan_hnum" ]]; then
    if [[ $__shellspan_hnum =~ ^[0-9]+$ ]] && (( num - __shellspan_hnum > 1 )); then
      { builtin fc -l $(( __shellspan_hnum + 1 )); printf '\0'; } 2>/dev/null 1<>"$__shellspan_hf"
      { IFS= read -r -d '' h < "$__shellspan_hf"; } 2>/dev/null
    fi
    __shellspan_hnum=$num
  else  # not added to the history: ignorespace, ignoredups, HISTIGNORE or history off
    h='' flags=u
    [[ $HISTCONTROL == *ignoredups* || $HISTCONTROL == *erasedups* ]] \
      && [[ $HISTCONTROL != *ignorespace* && $HISTCONTROL != *ignoreboth* && -z $HISTIGNORE \
            && -z ${__bp_ignorespace-} ]] \
      && flags=d
  fi
  __shellspan_seq=$(( __shellspan_seq + 1 ))
  __shellspan_send "C"$'\037'"$$"$'\037'"$__shellspan_sid"$'\037'"$__shellspan_seq"$'\037'"$__shellspan_span"$'\037'"$t0"$'\037'"$__shellspan_r"$'\037'"$1"$'\037'"$2"$'\037'"$__shellspan_cwd"$'\037'"$flags"$'\037'"$h"
  __shellspan_id
  __shellspan_span=$__shellspan_r
  TRACEPARENT=00-$__shellspan_sid-$__shellspan_span-01
}
__shellspan_precmd() {
  local st=$? ps=${PIPESTATUS[*]}
  if (( __shellspan_t0 )); then __shellspan_record "$st" "$ps"
  elif [[ -z $__shellspan_hnum && -n $__shellspan_hf ]]; then  # where the history ends now
    { builtin fc -l -1; printf '\0'; } 2>/dev/null 1<>"$__shellspan_hf"
    { IFS= read -r -d '' __shellspan_hnum < "$__shellspan_hf"; } 2>/dev/null
    __shellspan_hnum=${__shellspan_hnum%%$'\t'*}
  fi
  __shellspan_cwd=$PWD
  (( __shellspan_debug )) || [[ $PS0 == *__shellspan_t0* ]] || PS0=$__shellspan_ps0${PS0-}
  (( __shellspan_mark )) && printf '\e]6973;P;%s;%s\a' "$__shellspan_sid" "$__shellspan_root" >&2
  return "$st"
}
# Fallback without PS0: the first DEBUG trap after the prompt is the command starting. It is
# armed at the end of PROMPT_COMMAND (so the hooks must be sourced last in this mode).
__shellspan_debug_trap() {
  (( __shellspan_armed )) || return 0
  __shellspan_armed=0
  [[ $BASH_COMMAND == __shellspan_precmd* ]] && return 0  # an empty line: the prompt again
  __shellspan_now
  __shellspan_t0=$__shellspan_r
  (( __shellspan_mark )) && printf '\e]6973;C;%s;%s\a' "$__shellspan_sid" "$__shellspan_span" >&2
}
__shellspan_finish() {  # $1 status, $2 reason
  (( __shellspan_done || BASHPID != $$ )) && return  # not in subshells
  __shellspan_done=1
  local reason=$2
  if (( __shellspan_t0 )); then __shellspan_record "$1" "$1"; [[ $reason ]] || reason='exit'; fi
  __shellspan_now
  __shellspan_retry=0
  __shellspan_send "X"$'\037'"$$"$'\037'"$__shellspan_sid"$'\037'"$__shellspan_r"$'\037'"$1"$'\037'"${reason:-eof}"
  if (( ${#__shellspan_q[@]} )) && __shellspan_private "$__shellspan_dir/q.$$"; then
    { printf '%s\0' "${__shellspan_q[@]}" >> "$__shellspan_dir/q.$$"; } 2>/dev/null  # for the agent
  fi
}
__shellspan_exit() { local st=$?; __shellspan_finish "$st" ""; return "$st"; }
__shellspan_hup() {
  __shellspan_finish 129 hangup
  trap - HUP
  kill -HUP $$
}

__shellspan_id; __shellspan_sid=$__shellspan_r; __shellspan_id; __shellspan_sid+=$__shellspan_r
__shellspan_id; __shellspan_root=$__shellspan_r; __shellspan_id; __shellspan_span=$__shellspan_r
# Under `shellspan record`: take the session the recorder chose, and mark where commands start
# and the prompt comes back (private OSC 6973, removed from the stream by the recorder).
if [[ ${SHELLSPAN_RECORDER_SESSION-} =~ ^([0-9a-f]{32})-([0-9a-f]{16})$ ]]; then
  __shellspan_sid=${BASH_REMATCH[1]} __shellspan_root=${BASH_REMATCH[2]}; fi
unset SHELLSPAN_RECORDER_SESSION
__shellspan_mark=0; [[ -n ${SHELLSPAN_RECORDER-} && -t 2 ]] && __shellspan_mark=1
# shellcheck disable=SC2016  # expanded when PS0 is displayed
(( __shellspan_mark )) && __shellspan_ps0+='\e]6973;C;${__shellspan_sid};${__shellspan_span}\a'
__shellspan_now
__shellspan_q=("S"$'\037'"$$"$'\037'"$__shellspan_sid"$'\037'"$__shellspan_r"$'\037'"bash"$'\037'"$__shellspan_root"$'\037'"$PPID"$'\037'"${SHLVL-}"$'\037'"${TRACEPARENT-}"$'\037'"${USER-}"$'\037'"${SSH_CONNECTION:-${SSH_CLIENT-}}"$'\037'"$BASH_VERSION"$'\037'"$PWD")
export SHELLSPAN_SESSION_ID=$__shellspan_sid
export TRACEPARENT=00-$__shellspan_sid-$__shellspan_span-01
__shellspan_retry=0
if [[ -n $__shellspan_dir ]] && ! __shellspan_connect && [[ ${SHELLSPAN_AGENT_AUTOSTART-1} != 0 ]]
then
  ( SHELLSPAN_RUNTIME_DIR=$__shellspan_dir "$__shellspan_bin" agent --daemon </dev/null >/dev/null 2>&1 & )
  __shellspan_starting=$(( SECONDS + 5 ))
fi
__shellspan_retry=0
if (( __shellspan_debug )); then
  PROMPT_COMMAND="__shellspan_precmd${PROMPT_COMMAND:+; $PROMPT_COMMAND}; __shellspan_armed=1"
elif (( BASH_VERSINFO[0] * 100 + BASH_VERSINFO[1] >= 501 )); then
  # An element of its own: bash restores $? and PIPESTATUS before each element.
  PROMPT_COMMAND[0]=${PROMPT_COMMAND[0]-}
  PROMPT_COMMAND+=(__shellspan_precmd)
else  # bash < 5.1: PROMPT_COMMAND is a string
  # shellcheck disable=SC2128,SC2178
  PROMPT_COMMAND="__shellspan_precmd${PROMPT_COMMAND:+; $PROMPT_COMMAND}"
fi
if (( __shellspan_debug )); then
  # A sourced file or a function cannot see an existing DEBUG trap: chain it from top-level
  # code at the first prompt, which then removes itself from PROMPT_COMMAND.
  __shellspan_chain() {
    __shellspan_r=${__shellspan_r#trap -- }; __shellspan_r=${__shellspan_r%$'\n'}
    __shellspan_r=${__shellspan_r% DEBUG}
    [[ -n $__shellspan_r ]] && eval "__shellspan_r=$__shellspan_r"
  }
  # shellcheck disable=SC2016  # top-level code, run from PROMPT_COMMAND
  __shellspan_boot='__shellspan_r=; if [[ -n $__shellspan_hf ]]; then { trap -p DEBUG; printf "\0"; } 2>/dev/null 1<>"$__shellspan_hf"; { IFS= read -r -d "" __shellspan_r < "$__shellspan_hf"; } 2>/dev/null; else __shellspan_r=$(trap -p DEBUG); fi; __shellspan_chain; trap "__shellspan_debug_trap${__shellspan_r:+; $__shellspan_r}" DEBUG; PROMPT_COMMAND=${PROMPT_COMMAND#"$__shellspan_boot; "}'
  # shellcheck disable=SC2128,SC2178
  PROMPT_COMMAND="$__shellspan_boot; $PROMPT_COMMAND"
else
  PS0=$__shellspan_ps0${PS0-}
fi
# Chain an existing EXIT trap (read through a file: no command substitution, no fork).
__shellspan_r=
if [[ -n $__shellspan_hf ]]; then
  { trap -p EXIT; printf '\0'; } 2>/dev/null 1<>"$__shellspan_hf"
  { IFS= read -r -d '' __shellspan_r < "$__shellspan_hf"; } 2>/dev/null
else __shellspan_r=$(trap -p EXIT)  # first shell ever: no directory yet (one fork, once)
fi
__shellspan_r=${__shellspan_r#trap -- }; __shellspan_r=${__shellspan_r%$'\n'}
__shellspan_r=${__shellspan_r% EXIT}
[[ -n $__shellspan_r ]] && eval "__shellspan_r=$__shellspan_r"
# shellcheck disable=SC2064  # the existing trap's text is embedded now, on purpose
trap "__shellspan_exit${__shellspan_r:+; $__shellspan_r}" EXIT
__shellspan_r=
if [[ -n $__shellspan_hf ]]; then
  { trap -p HUP; printf '\0'; } 2>/dev/null 1<>"$__shellspan_hf"
  { IFS= read -r -d '' __shellspan_r < "$__shellspan_hf"; } 2>/dev/null
else __shellspan_r=$(trap -p HUP)
fi
[[ -z $__shellspan_r ]] && trap __shellspan_hup HUP
fi
