# shellspan zsh hooks -- printed by `shellspan init zsh`; static, safe to source.
# Needs zsh >= 5.1 with the zsh/system and zsh/datetime modules (standard in zsh builds).
if [[ -o interactive && -z ${__shellspan_on-} && ${SHELLSPAN_DISABLED-} != 1 ]] \
   && zmodload zsh/system zsh/datetime 2>/dev/null; then
typeset -g __shellspan_on=1
typeset -g __shellspan_bin=${SHELLSPAN_BIN:-@BIN@}
typeset -g __shellspan_dir= __shellspan_why=

# The runtime directory: the rule of shellspan/posix/runtime.py (a test holds this to it).
# A candidate is used if it is, or can be created as, a directory of this user that is not a
# symbolic link; the agent closes it to others (0700).
zmodload -F zsh/files b:zf_mkdir 2>/dev/null
__shellspan_usable() {  # $1 directory; sets __shellspan_why when it cannot be used
  if [[ ! -e $1 && ! -L $1 ]]; then
    if (( ${+builtins[zf_mkdir]} )); then zf_mkdir -p -m 700 -- $1 2>/dev/null
    else command mkdir -p -m 700 -- $1 2>/dev/null; fi
  fi
  if [[ -L $1 ]]; then __shellspan_why='is a symbolic link'
  elif [[ ! -d $1 ]]; then __shellspan_why='cannot be created or reached'
  elif [[ ! -O $1 ]]; then __shellspan_why='belongs to another user'
  elif [[ ! -w $1 || ! -x $1 ]]; then __shellspan_why='is not writable'
  else return 0; fi
  return 1
}
__shellspan_choose_dir() {
  local want home= c why=
  if [[ -n ${SHELLSPAN_RUNTIME_DIR-} ]]; then want=$SHELLSPAN_RUNTIME_DIR
  elif [[ -n ${XDG_RUNTIME_DIR-} && -d $XDG_RUNTIME_DIR ]]; then want=$XDG_RUNTIME_DIR/shellspan
  else want=/tmp/shellspan-$UID; fi
  if __shellspan_usable $want; then __shellspan_dir=$want; return; fi
  why=$__shellspan_why
  # The home directory from the password database: an inherited $HOME may be another user's.
  [[ -n $USERNAME && $USERNAME != (-*|*[^A-Za-z0-9._-]*) ]] && eval "home=~$USERNAME" 2>/dev/null
  for c in ${XDG_RUNTIME_DIR:+$XDG_RUNTIME_DIR/shellspan} /tmp/shellspan-$UID \
           ${home:+$home/.local/state/shellspan/run-$HOST}; do
    [[ $c != $want && ( $c != ${XDG_RUNTIME_DIR-}/shellspan || -d $XDG_RUNTIME_DIR ) ]] \
      && __shellspan_usable $c && { __shellspan_dir=$c; break; }
  done
  c='nothing is recorded'
  [[ -n $__shellspan_dir ]] && c="recording through $__shellspan_dir"
  print -ru2 -- "shellspan: not using $want: it $why; $c"
}
__shellspan_choose_dir
typeset -gi __shellspan_fd=-1 __shellspan_seq=0 __shellspan_t0=0 __shellspan_done=0
typeset -gi __shellspan_retry=0 __shellspan_starting=0 __shellspan_restart=0 __shellspan_apid=0
typeset -gi __shellspan_proc=0 __shellspan_bg=0
typeset -g __shellspan_r= __shellspan_sid= __shellspan_root= __shellspan_span= __shellspan_text=
typeset -ga __shellspan_q=()
[[ -d /proc/$$ ]] && __shellspan_proc=1

__shellspan_id() {
  printf -v __shellspan_r '%04x%04x%04x%04x' $(( RANDOM ^ (${EPOCHREALTIME#*.} & 0x7fff) )) \
    $RANDOM $(( RANDOM ^ ($$ & 0x7fff) )) $(( RANDOM | 1 ))
}
__shellspan_now() { __shellspan_r=${EPOCHREALTIME/[.,]/}; __shellspan_r=${__shellspan_r[1,16]}; }
# The agent is up when its pid (from agent.pid) is alive. The FIFO is opened read-write and
# non-blocking: opening never blocks, a write never raises SIGPIPE or waits. Records are written
# only while the agent is alive; meanwhile they queue in the shell (spilled to q.PID beyond 1000
# and at exit), and a shell starts a new agent when the one it used is gone (after a start that
# brought none up, not again for 10 s).
__shellspan_up() {
  if (( __shellspan_proc )); then [[ -d /proc/$__shellspan_apid ]]
  else kill -0 $__shellspan_apid 2>/dev/null; fi
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
  local pid= fd
  [[ -n $__shellspan_dir && -p $__shellspan_dir/events && -O $__shellspan_dir/events
     && -r $__shellspan_dir/agent.pid ]] && { read -r pid < $__shellspan_dir/agent.pid; } 2>/dev/null
  __shellspan_apid=${pid//[^0-9]/}
  if (( ! __shellspan_apid )) || ! __shellspan_up; then
    __shellspan_apid=0
    __shellspan_start_agent
    return 1
  fi
  if (( __shellspan_fd < 0 )) || [[ ! /dev/fd/$__shellspan_fd -ef $__shellspan_dir/events ]]; then
    (( __shellspan_fd < 0 )) || exec {__shellspan_fd}>&-
    __shellspan_fd=-1
    sysopen -rw -o nonblock,cloexec,nofollow -u fd $__shellspan_dir/events 2>/dev/null || return 1
    __shellspan_fd=$fd
  fi
  __shellspan_retry=0 __shellspan_restart=0  # an agent came up: the next may start at once
}
__shellspan_write() {  # a record to the FIFO; 1 if it could not be written (pipe full)
  local r=$1
  if (( ${#r} <= 900 )); then syswrite -o $__shellspan_fd "$r"$'\0' 2>/dev/null; return; fi
  while (( ${#r} > 900 )); do  # keep every write below PIPE_BUF so writes stay atomic
    syswrite -o $__shellspan_fd "T"$'\037'"$$"$'\037'"${r[1,900]}"$'\0' 2>/dev/null || return
    r=${r[901,-1]}
  done
  syswrite -o $__shellspan_fd "L"$'\037'"$$"$'\037'"$r"$'\0' 2>/dev/null
}
__shellspan_spill() {  # the queue to q.PID (a file of this user, 0600, never a link)
  local fd
  if (( ${#__shellspan_q} )) && [[ -n $__shellspan_dir ]] \
     && sysopen -w -a -m 600 -o create,nofollow,cloexec -u fd $__shellspan_dir/q.$$ 2>/dev/null
  then
    [[ -O $__shellspan_dir/q.$$ ]] && { printf '%s\0' "${__shellspan_q[@]}" >&$fd; } 2>/dev/null
    exec {fd}>&-
  fi
  __shellspan_q=()
}
__shellspan_send() {
  if (( __shellspan_apid && __shellspan_fd >= 0 )) && __shellspan_up || __shellspan_connect; then
    while (( ${#__shellspan_q} )); do
      __shellspan_write "${__shellspan_q[1]}" || break
      shift __shellspan_q
    done
    (( ! ${#__shellspan_q} )) && __shellspan_write "$1" && return
  fi
  __shellspan_q+=("$1")
  (( ${#__shellspan_q} < 1000 )) || __shellspan_spill
}
# The two hooks inline the common case (a zsh function call costs more than the work).
__shellspan_preexec() {
  local flags= text=${1:-$3} r
  (( __shellspan_t0 = epochtime[1] * 1000000 + epochtime[2] / 1000 ))
  printf -v __shellspan_span '%04x%04x%04x%04x' $RANDOM $RANDOM $RANDOM $(( RANDOM | 1 ))
  export TRACEPARENT=00-$__shellspan_sid-$__shellspan_span-01
  __shellspan_bg=${!:-0} __shellspan_text=$text
  # A leading space asks zsh (histignorespace) to keep a command out of the history: recorded,
  # and marked.
  if [[ $text == [[:space:]]* && -o histignorespace ]]; then
    flags=s
    [[ ${SHELLSPAN_HIDDEN_COMMANDS-record} == redact ]] && text=
  fi
  (( ++__shellspan_seq ))
  r="B"$'\037'"$$"$'\037'"$__shellspan_sid"$'\037'"$__shellspan_seq"$'\037'"$__shellspan_span"$'\037'"$__shellspan_t0"$'\037'"$PWD"$'\037'"$flags"$'\037\037'"$text"
  if (( __shellspan_fd >= 0 && ! ${#__shellspan_q} && ${#r} <= 900 && __shellspan_proc )) \
     && [[ -d /proc/$__shellspan_apid ]] && syswrite -o $__shellspan_fd "$r"$'\0' 2>/dev/null
  then return
  fi
  __shellspan_send "$r"
}
__shellspan_precmd() {
  local st=$? ps="${pipestatus[*]}" r
  (( __shellspan_t0 )) || return $st
  __shellspan_t0=0
  # No pipeline status for a line that started a background job or does not end with $?.
  if (( __shellspan_bg != ${!:-0} )); then ps=
  elif [[ ${ps##* } != $st && ! -o pipefail ]]; then ps=; fi
  r="E"$'\037'"$$"$'\037'"$__shellspan_sid"$'\037'"$__shellspan_seq"$'\037'"$(( epochtime[1] * 1000000 + epochtime[2] / 1000 ))"$'\037'"$st"$'\037'"$ps"
  if (( __shellspan_fd >= 0 && ! ${#__shellspan_q} && __shellspan_proc )) \
     && [[ -d /proc/$__shellspan_apid ]] && syswrite -o $__shellspan_fd "$r"$'\0' 2>/dev/null
  then :
  else __shellspan_send "$r"
  fi
  export TRACEPARENT=00-$__shellspan_sid-$__shellspan_root-01
  return $st
}
# The exit hook: why the shell ends, as far as it can tell. The terminal gone (no descriptor is
# a terminal any more): hangup. `exit`/`logout`/`bye` running: exit. Another command running:
# a signal ended the shell. Otherwise: end of input.
__shellspan_zshexit() {
  local st=$? how=eof words=(${=__shellspan_text})
  (( __shellspan_done || sysparams[pid] != $$ )) && return $st  # not in subshells
  __shellspan_done=1
  if ! [[ -t 0 || -t 1 || -t 2 ]]; then how=hangup
  elif (( __shellspan_t0 )) && [[ ${words[1]-} == (exit|logout|bye) ]]; then
    how=exit
  elif (( __shellspan_t0 )); then how=signal
  fi
  __shellspan_now
  __shellspan_retry=0
  __shellspan_send "X"$'\037'"$$"$'\037'"$__shellspan_sid"$'\037'"$__shellspan_r"$'\037'"$st"$'\037'"$how"
  (( ${#__shellspan_q} )) && __shellspan_spill
  return $st
}

__shellspan_id; __shellspan_sid=$__shellspan_r; __shellspan_id; __shellspan_sid+=$__shellspan_r
__shellspan_id; __shellspan_root=$__shellspan_r
__shellspan_now
__shellspan_q=("S"$'\037'"$$"$'\037'"$__shellspan_sid"$'\037'"$__shellspan_r"$'\037'"zsh"$'\037'"$__shellspan_root"$'\037'"$PPID"$'\037'"${SHLVL-}"$'\037'"${TRACEPARENT-}"$'\037'"${USER-}"$'\037'"${SSH_CONNECTION:-${SSH_CLIENT-}}"$'\037'"$ZSH_VERSION"$'\037'"$PWD")
export SHELLSPAN_SESSION_ID=$__shellspan_sid
export TRACEPARENT=00-$__shellspan_sid-$__shellspan_root-01
__shellspan_connect
__shellspan_retry=0
autoload -Uz add-zsh-hook
add-zsh-hook preexec __shellspan_preexec
add-zsh-hook precmd __shellspan_precmd
add-zsh-hook zshexit __shellspan_zshexit
# First among the precmd hooks, so it sees the command's $? and $pipestatus.
precmd_functions=(__shellspan_precmd ${precmd_functions:#__shellspan_precmd})
fi
