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
typeset -gi __shellspan_gen=0 __shellspan_rot=1000 __shellspan_seen=-1 __shellspan_restart=0
typeset -gi __shellspan_apid=0 __shellspan_gone=0 __shellspan_proc=0 __shellspan_bg=0 __shellspan_mark=0
typeset -g __shellspan_r= __shellspan_sid= __shellspan_root= __shellspan_half= __shellspan_span=
typeset -g __shellspan_text= __shellspan_p=
[[ -d /proc/$$ ]] && __shellspan_proc=1

# Ids: the session's are random; the span id of command N is a random half of this session and
# 10000000 + N (unique in the session, no system call, the user's RANDOM sequence left alone).
__shellspan_id() {
  printf -v __shellspan_r '%04x%04x%04x%04x' $(( RANDOM ^ (${EPOCHREALTIME#*.} & 0x7fff) )) \
    $RANDOM $(( RANDOM ^ ($$ & 0x7fff) )) $(( RANDOM | 1 ))
}
# --- the journal and the agent -----------------------------------------------------------------
# Records are appended to r.SESSION.N (0600), a file of this session that the agent reads on
# a clock: a write never waits and never wakes the agent, and what is written while no agent
# runs is read by the next one. Every 1000 commands the shell goes on in the next file. Once a
# second at most, at a prompt, the shell looks for its agent and starts one if there is none
# (after a start that brought no agent up, not again for 10 s).
__shellspan_journal() {  # open r.SESSION.N for appending (created 0600, never through a link)
  local fd f=$__shellspan_dir/r.$__shellspan_sid.$__shellspan_gen
  sysopen -w -a -m 600 -o create,nofollow,cloexec -u fd $f 2>/dev/null || return 1
  [[ -O $f ]] || { exec {fd}>&-; return 1; }
  (( __shellspan_fd < 0 )) || exec {__shellspan_fd}>&-
  __shellspan_fd=$fd __shellspan_rot=$(( __shellspan_seq + 1000 ))
}
__shellspan_up() {
  if (( __shellspan_proc )); then [[ -d /proc/$__shellspan_apid ]]
  else kill -0 $__shellspan_apid 2>/dev/null; fi
}
__shellspan_watch() {
  __shellspan_seen=$SECONDS
  if (( __shellspan_seq >= __shellspan_rot )); then
    (( ++__shellspan_gen ))
    __shellspan_journal || (( __shellspan_gen-- ))
  fi
  (( __shellspan_apid )) && __shellspan_up && return
  local pid=
  { read -r pid < $__shellspan_dir/agent.pid; } 2>/dev/null
  __shellspan_apid=${pid//[^0-9]/}
  # An agent is up: once it goes, the next may be started at once.
  (( __shellspan_apid )) && __shellspan_up && { __shellspan_restart=0; return; }
  [[ ${SHELLSPAN_AGENT_AUTOSTART-1} != 0 ]] && (( SECONDS >= __shellspan_restart || __shellspan_apid != __shellspan_gone )) || return
  __shellspan_restart=$(( SECONDS + 10 )) __shellspan_gone=$__shellspan_apid __shellspan_apid=0
  # Immune to the hangup of this shell's process group: a shell that ends before the agent
  # has detached (started at the first prompt, the shell is still in that group) must not
  # take it along.
  ( trap '' HUP; SHELLSPAN_RUNTIME_DIR=$__shellspan_dir "$__shellspan_bin" agent --daemon </dev/null >/dev/null 2>&1 & )
}
# The two hooks inline the common case (a zsh function call costs more than the work).
__shellspan_preexec() {
  local flags= text=${1:-$3}
  __shellspan_t0=1 __shellspan_bg=${!:-0} __shellspan_text=$text
  # A leading space asks zsh (histignorespace) to keep a command out of the history: recorded,
  # and marked.
  if [[ $text == [[:space:]]* && -o histignorespace ]]; then
    flags=s
    [[ ${SHELLSPAN_HIDDEN_COMMANDS-record} == redact ]] && text=
  fi
  (( __shellspan_mark )) && print -rnu2 -- $'\e]6973;C;'$__shellspan_sid\;$__shellspan_span$'\a'
  print -rNu $__shellspan_fd -- B$'\037'$__shellspan_p$'\037'$(( ++__shellspan_seq ))$'\037'$__shellspan_span$'\037'$EPOCHREALTIME$'\037'$PWD$'\037'$flags$'\037\037'$text
}
__shellspan_precmd() {
  local st=$? ps="${pipestatus[*]}"
  if (( __shellspan_t0 )); then
    __shellspan_t0=0
    # No pipeline status for a line that started a background job or does not end with $?.
    if (( __shellspan_bg != ${!:-0} )); then ps=
    elif [[ ${ps##* } != $st && ! -o pipefail ]]; then ps=; fi
    print -rNu $__shellspan_fd -- E$'\037'$__shellspan_p$'\037'$__shellspan_seq$'\037'$EPOCHREALTIME$'\037'$st$'\037'$ps
    __shellspan_span=$__shellspan_half$(( 10000001 + __shellspan_seq ))
    export TRACEPARENT=00-$__shellspan_sid-$__shellspan_span-01
  fi
  (( SECONDS == __shellspan_seen )) || __shellspan_watch
  (( ! __shellspan_mark )) || print -rnu2 -- $'\e]6973;P;'$__shellspan_sid\;$__shellspan_root$'\a'
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
  print -rNu $__shellspan_fd -- X$'\037'$__shellspan_p$'\037'$EPOCHREALTIME$'\037'$st$'\037'$how
  return $st
} 2>/dev/null
# Where this shell was started from, when no TRACEPARENT says so (`su -`, `sudo -i` clear the
# environment): the processes above it on the same terminal, nearest first, each with the
# TRACEPARENT it was started with if this user can read it (`pid[=traceparent] ...`, up to the
# first that has one). The agent links the session to the command of the first it knows.
__shellspan_ancestors() {
  local p=$$ l h tty= pp tt tp out= n=0
  local -a f env
  while (( n++ < 12 )); do
    l=$(</proc/$p/stat) 2>/dev/null
    [[ -n $l ]] || break
    f=(${=${l##*\) }})  # after "pid (comm) ": state ppid pgrp sid tty
    pp=${f[2]} tt=${f[5]}
    if [[ -z $tty ]]; then tty=$tt
    else
      [[ $tt == $tty && $tt != 0 ]] || break
      env=(${(0)"$(</proc/$p/environ)"}) 2>/dev/null
      tp=${${(M)env:#TRACEPARENT=*}[1]#TRACEPARENT=}
      out+=" $p${tp:+=$tp}"
      [[ -z $tp ]] || break
    fi
    (( pp > 1 )) || break
    p=$pp
  done
  __shellspan_r=${out# }
}

if [[ -n $__shellspan_dir ]]; then
__shellspan_id; __shellspan_sid=$__shellspan_r; __shellspan_id; __shellspan_sid+=$__shellspan_r
__shellspan_id; __shellspan_root=$__shellspan_r __shellspan_half=${__shellspan_r[1,8]}
__shellspan_span=${__shellspan_half}10000001
# Under `shellspan record`: take the session the recorder chose, and mark where commands start
# and the prompt comes back (private OSC 6973, removed from the stream by the recorder).
if [[ ${SHELLSPAN_RECORDER_SESSION-} =~ '^([0-9a-f]{32})-([0-9a-f]{16})$' ]]; then
  __shellspan_sid=$match[1] __shellspan_root=$match[2]; fi
unset SHELLSPAN_RECORDER_SESSION
[[ -n ${SHELLSPAN_RECORDER-} && -t 2 ]] && __shellspan_mark=1
__shellspan_p=$$$'\037'$__shellspan_sid
if __shellspan_journal; then
__shellspan_r=
[[ -n ${TRACEPARENT-} || ! -d /proc/$$ ]] || __shellspan_ancestors
print -rNu $__shellspan_fd -- S$'\037'$__shellspan_p$'\037'$EPOCHREALTIME$'\037'zsh$'\037'$__shellspan_root$'\037'$PPID$'\037'${SHLVL-}$'\037'${TRACEPARENT-}$'\037'${USER-}$'\037'${SSH_CONNECTION:-${SSH_CLIENT-}}$'\037'$ZSH_VERSION$'\037'$__shellspan_r$'\037'$PWD
export SHELLSPAN_SESSION_ID=$__shellspan_sid
export TRACEPARENT=00-$__shellspan_sid-$__shellspan_span-01
__shellspan_watch
autoload -Uz add-zsh-hook
add-zsh-hook preexec __shellspan_preexec
add-zsh-hook precmd __shellspan_precmd
add-zsh-hook zshexit __shellspan_zshexit
# First among the precmd hooks, so it sees the command's $? and $pipestatus.
precmd_functions=(__shellspan_precmd ${precmd_functions:#__shellspan_precmd})
fi
fi
fi
