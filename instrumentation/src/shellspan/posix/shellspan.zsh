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
typeset -gi __shellspan_retry=0 __shellspan_starting=0
typeset -g __shellspan_r= __shellspan_sid= __shellspan_root= __shellspan_span=
typeset -ga __shellspan_q=()

__shellspan_id() {
  printf -v __shellspan_r '%04x%04x%04x%04x' $(( RANDOM ^ (${EPOCHREALTIME#*.} & 0x7fff) )) \
    $RANDOM $(( RANDOM ^ ($$ & 0x7fff) )) $(( RANDOM | 1 ))
}
__shellspan_now() { __shellspan_r=${EPOCHREALTIME/[.,]/}; __shellspan_r=${__shellspan_r[1,16]}; }
# The FIFO is opened read-write and non-blocking: opening never blocks, a write never raises
# SIGPIPE, and when the agent is down and the pipe is full a write fails at once (EAGAIN).
__shellspan_connect() {
  (( __shellspan_fd >= 0 )) && return 0
  (( SECONDS >= __shellspan_retry )) || return 1
  # At most one attempt a second (records queue meanwhile), except while an agent this shell
  # started is coming up: then at every prompt, so the first commands are not held back.
  (( SECONDS < __shellspan_starting )) || __shellspan_retry=$(( SECONDS + 1 ))
  [[ -n $__shellspan_dir && -p $__shellspan_dir/events && -O $__shellspan_dir/events ]] || return 1
  local fd
  sysopen -rw -o nonblock,cloexec,nofollow -u fd $__shellspan_dir/events 2>/dev/null \
    || return 1
  __shellspan_fd=$fd
}
__shellspan_write() {
  local r=$1
  if (( ${#r} <= 900 )); then syswrite -o $__shellspan_fd "$r"$'\0' 2>/dev/null; return; fi
  while (( ${#r} > 900 )); do
    syswrite -o $__shellspan_fd "T"$'\037'"$$"$'\037'"${r[1,900]}"$'\0' 2>/dev/null
    r=${r[901,-1]}
  done
  syswrite -o $__shellspan_fd "L"$'\037'"$$"$'\037'"$r"$'\0' 2>/dev/null
}
__shellspan_send() {
  if (( __shellspan_fd >= 0 )) || __shellspan_connect; then
    if (( ${#__shellspan_q} )); then
      local q; for q in "${__shellspan_q[@]}"; do __shellspan_write "$q"; done
      __shellspan_q=()
    fi
    __shellspan_write "$1"
  elif (( ${#__shellspan_q} < 100 )); then
    __shellspan_q+=("$1")
  fi
}
# The two hooks inline their work (a zsh function call costs more than the work itself).
__shellspan_preexec() {
  # No agent for a while and the queue is full: do nothing until the next attempt.
  (( __shellspan_fd < 0 && ${#__shellspan_q} >= 100 && SECONDS < __shellspan_retry )) && return
  local flags= text=$1 r
  (( __shellspan_t0 = epochtime[1] * 1000000 + epochtime[2] / 1000 ))
  printf -v __shellspan_span '%04x%04x%04x%04x' $RANDOM $RANDOM $RANDOM $(( RANDOM | 1 ))
  export TRACEPARENT=00-$__shellspan_sid-$__shellspan_span-01
  (( __shellspan_mark )) && print -rnu2 -- $'\e]6973;C;'$__shellspan_sid\;$__shellspan_span$'\a'
  if [[ $text == [[:space:]]* && ( -o histignorespace || ${SHELLSPAN_IGNORESPACE-} == always ) ]]
  then flags=s text=
  fi
  (( ++__shellspan_seq ))
  r="B"$'\037'"$$"$'\037'"$__shellspan_sid"$'\037'"$__shellspan_seq"$'\037'"$__shellspan_span"$'\037'"$__shellspan_t0"$'\037'"$PWD"$'\037'"$flags"$'\037'"$text"
  if (( __shellspan_fd >= 0 && ! ${#__shellspan_q} && ${#r} <= 900 )); then
    syswrite -o $__shellspan_fd "$r"$'\0' 2>/dev/null
  else
    __shellspan_send "$r"
  fi
}
__shellspan_end() {  # $1 status, $2 pipeline statuses
  __shellspan_t0=0
  __shellspan_send "E"$'\037'"$$"$'\037'"$__shellspan_sid"$'\037'"$__shellspan_seq"$'\037'"$(( epochtime[1] * 1000000 + epochtime[2] / 1000 ))"$'\037'"$1"$'\037'"$2"
  export TRACEPARENT=00-$__shellspan_sid-$__shellspan_root-01
}
__shellspan_precmd() {
  local st=$? ps="${pipestatus[*]}"
  if (( __shellspan_t0 )); then
    __shellspan_t0=0
    if (( __shellspan_fd >= 0 && ! ${#__shellspan_q} )); then
      syswrite -o $__shellspan_fd "E"$'\037'"$$"$'\037'"$__shellspan_sid"$'\037'"$__shellspan_seq"$'\037'"$(( epochtime[1] * 1000000 + epochtime[2] / 1000 ))"$'\037'"$st"$'\037'"$ps"$'\0' 2>/dev/null
    else
      __shellspan_send "E"$'\037'"$$"$'\037'"$__shellspan_sid"$'\037'"$__shellspan_seq"$'\037'"$(( epochtime[1] * 1000000 + epochtime[2] / 1000 ))"$'\037'"$st"$'\037'"$ps"
    fi
    export TRACEPARENT=00-$__shellspan_sid-$__shellspan_root-01
  fi
  (( __shellspan_mark )) && print -rnu2 -- $'\e]6973;P;'$__shellspan_sid\;$__shellspan_root$'\a'
  return $st
}
__shellspan_finish() {  # $1 status, $2 reason
  (( __shellspan_done || sysparams[pid] != $$ )) && return  # not in subshells
  __shellspan_done=1
  local reason=$2
  if (( __shellspan_t0 )); then __shellspan_end $1 $1; [[ -n $reason ]] || reason=exit; fi
  __shellspan_now
  __shellspan_retry=0
  __shellspan_send "X"$'\037'"$$"$'\037'"$__shellspan_sid"$'\037'"$__shellspan_r"$'\037'"$1"$'\037'"${reason:-eof}"
  if (( ${#__shellspan_q[@]} )) && [[ -n $__shellspan_dir ]]; then  # leave them to the agent
    local fd  # a file of this user, created 0600, never through a link
    if sysopen -w -a -m 600 -o create,nofollow,cloexec -u fd $__shellspan_dir/q.$$ 2>/dev/null
    then
      [[ -O $__shellspan_dir/q.$$ ]] && { printf '%s\0' "${__shellspan_q[@]}" >&$fd; } 2>/dev/null
      exec {fd}>&-
    fi
  fi
}
__shellspan_zshexit() { local st=$?; __shellspan_finish $st ""; return $st; }
__shellspan_hup() { __shellspan_finish 129 hangup; trap - HUP; kill -HUP $$; }

__shellspan_id; __shellspan_sid=$__shellspan_r; __shellspan_id; __shellspan_sid+=$__shellspan_r
__shellspan_id; __shellspan_root=$__shellspan_r
# Under `shellspan record`: take the session the recorder chose, and mark where commands start
# and the prompt comes back (private OSC 6973, removed from the stream by the recorder).
if [[ ${SHELLSPAN_RECORDER_SESSION-} =~ '^([0-9a-f]{32})-([0-9a-f]{16})$' ]]; then
  __shellspan_sid=$match[1] __shellspan_root=$match[2]; fi
unset SHELLSPAN_RECORDER_SESSION
typeset -gi __shellspan_mark=0
[[ -n ${SHELLSPAN_RECORDER-} && -t 2 ]] && __shellspan_mark=1
__shellspan_now
__shellspan_q=("S"$'\037'"$$"$'\037'"$__shellspan_sid"$'\037'"$__shellspan_r"$'\037'"zsh"$'\037'"$__shellspan_root"$'\037'"$PPID"$'\037'"${SHLVL-}"$'\037'"${TRACEPARENT-}"$'\037'"${USER-}"$'\037'"${SSH_CONNECTION:-${SSH_CLIENT-}}"$'\037'"$ZSH_VERSION"$'\037'"$PWD")
export SHELLSPAN_SESSION_ID=$__shellspan_sid
export TRACEPARENT=00-$__shellspan_sid-$__shellspan_root-01
if [[ -n $__shellspan_dir ]] && ! __shellspan_connect && [[ ${SHELLSPAN_AGENT_AUTOSTART-1} != 0 ]]
then
  ( SHELLSPAN_RUNTIME_DIR=$__shellspan_dir "$__shellspan_bin" agent --daemon </dev/null >/dev/null 2>&1 & )
  __shellspan_starting=$(( SECONDS + 5 ))
fi
__shellspan_retry=0
autoload -Uz add-zsh-hook
add-zsh-hook preexec __shellspan_preexec
add-zsh-hook precmd __shellspan_precmd
add-zsh-hook zshexit __shellspan_zshexit
# First among the precmd hooks, so it sees the command's $? and $pipestatus.
precmd_functions=(__shellspan_precmd ${precmd_functions:#__shellspan_precmd})
(( ${+functions[TRAPHUP]} )) || trap __shellspan_hup HUP
fi
