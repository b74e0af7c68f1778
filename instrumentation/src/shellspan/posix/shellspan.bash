# shellcheck shell=bash
# shellspan bash hooks -- printed by `shellspan init bash`; static, safe to source.
# A command starts at the first DEBUG trap after PS0 (bash >= 4.4; before, after the prompt):
# its text is read from the history list and a record goes to this session's journal file in
# the runtime directory, which the agent reads. It ends when PROMPT_COMMAND runs: a second
# record. Signals and the terminal are left to bash: no trap but EXIT (chained with an
# existing one) and DEBUG (likewise). See docs/posix-shells.md.
# Does nothing in non-interactive shells or when SHELLSPAN_DISABLED=1.
if [[ $- == *i* && -z ${__shellspan_on-} && ${SHELLSPAN_DISABLED-} != 1 ]] \
   && (( BASH_VERSINFO[0] * 100 + BASH_VERSINFO[1] >= 401 )); then
__shellspan_on=1 __shellspan_hasps0=1
if (( BASH_VERSINFO[0] * 100 + BASH_VERSINFO[1] < 404 )) || [[ ${SHELLSPAN_BASH_DEBUG_TRAP-} == 1 ]]
then __shellspan_hasps0=0  # no PS0: the DEBUG trap is armed at the end of PROMPT_COMMAND
fi
__shellspan_bin=${SHELLSPAN_BIN:-@BIN@}
__shellspan_jf=/dev/null __shellspan_gen=0 __shellspan_rot=1000
__shellspan_apid=0 __shellspan_gone=0 __shellspan_seen=-1 __shellspan_restart=0 __shellspan_seq=0 __shellspan_done=0
__shellspan_cwd=$PWD __shellspan_e='' __shellspan_armed=0 __shellspan_began=0 __shellspan_bg=0
__shellspan_ml=0 __shellspan_pst=0 __shellspan_hnum=0 __shellspan_priv=0 __shellspan_hi=0
__shellspan_hide=0 __shellspan_slow=1 __shellspan_st=0 __shellspan_ps=''
__shellspan_uhc='' __shellspan_phc='' __shellspan_uhi='' __shellspan_chain=0 __shellspan_proc=0
__shellspan_hf='' __shellspan_lf='' __shellspan_dir='' __shellspan_why='' __shellspan_r=''
__shellspan_txt='' __shellspan_fl='' __shellspan_brk=''
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
# Ids. The session's are random (SRANDOM in bash >= 5.1, else RANDOM, drawn once here); the span
# id of command N is a random half of this session and 10000000 + N: unique in the session,
# made without a system call (SRANDOM makes one) or drawing on the user's RANDOM.
if (( BASH_VERSINFO[0] * 100 + BASH_VERSINFO[1] >= 501 )); then
  __shellspan_rnd() { printf -v __shellspan_r '%08x%08x' "$SRANDOM" "$SRANDOM"; }
else
  __shellspan_rnd() { printf -v __shellspan_r '%04x%04x%04x%04x' "$RANDOM" "$RANDOM" "$RANDOM" \
    "$(( (RANDOM ^ $$) | 1 ))"; }
fi
__shellspan_rnd; __shellspan_sid=$__shellspan_r; __shellspan_rnd; __shellspan_sid+=$__shellspan_r
__shellspan_rnd; __shellspan_root=$__shellspan_r __shellspan_half=${__shellspan_r:0:8}
__shellspan_span=${__shellspan_half}10000001
# Under `shellspan record`: take the session the recorder chose, and mark where commands start
# and the prompt comes back (private OSC 6973, removed from the stream by the recorder).
if [[ ${SHELLSPAN_RECORDER_SESSION-} =~ ^([0-9a-f]{32})-([0-9a-f]{16})$ ]]; then
  __shellspan_sid=${BASH_REMATCH[1]} __shellspan_root=${BASH_REMATCH[2]}; fi
unset SHELLSPAN_RECORDER_SESSION
__shellspan_mark=0; [[ -n ${SHELLSPAN_RECORDER-} && -t 2 ]] && __shellspan_mark=1
# Times: microseconds, or seconds with a fraction ($EPOCHREALTIME as it is: the agent reads
# its decimal point, whatever the locale). bash < 5 has no EPOCHREALTIME: whole seconds, from
# SECONDS and the time the shell started.
printf -v __shellspan_e0 '%(%s)T' -1
__shellspan_e0=$(( __shellspan_e0 - SECONDS )) __shellspan_t0=0
if (( BASH_VERSINFO[0] >= 5 )); then
  __shellspan_now() { __shellspan_r=${EPOCHREALTIME/[.,]/}; }
  # shellcheck disable=SC2016  # expanded when PS0 is displayed: the start time, arm the trap,
  # and $? (the status of the line before, when it is a pasted one with no prompt between)
  __shellspan_ps0='${__shellspan_e[__shellspan_t0=${EPOCHREALTIME/[.,]/},__shellspan_armed=1,__shellspan_pst=$?]-}'
else
  __shellspan_now() { __shellspan_r=$(( __shellspan_e0 + SECONDS ))000000; }
  # shellcheck disable=SC2016
  __shellspan_ps0='${__shellspan_e[__shellspan_t0=\D{%s}000000,__shellspan_armed=1,__shellspan_pst=$?]-}'
fi
# shellcheck disable=SC2016  # expanded when PS0 is displayed
(( __shellspan_mark )) && __shellspan_ps0+='\e]6973;C;${__shellspan_sid};${__shellspan_span}\a'
# shellcheck disable=SC2016  # expanded when PS2 is displayed
__shellspan_ps2='${__shellspan_e[__shellspan_ml=1]-}$(__shellspan_lines)'

# --- the journal and the agent -----------------------------------------------------------------
# Records are appended to r.SESSION.N (0600), a file of this session that the agent reads on
# a clock: a write never waits and never wakes the agent, and what is written while no agent
# runs is read by the next one. Every write opens the file (`>>`): bash cannot mark a
# descriptor close-on-exec, and one kept open would be inherited by every command, also one
# run as another user (`runuser`, `sudo -u`), which could then write records in this
# session's name. No file of the runtime directory is held open between writes. Every 1000 commands the shell goes on in the next file. Once a
# second at most, at a prompt, the shell looks for its agent and starts one if there is none
# (after a start that brought no agent up, not again for 10 s).
__shellspan_journal() {  # r.SESSION.N, appended to by every write (see below)
  local f=$__shellspan_dir/r.$__shellspan_sid.$__shellspan_gen
  __shellspan_private "$f" || return 1
  __shellspan_jf=$f __shellspan_rot=$(( __shellspan_seq + 1000 ))
}
__shellspan_up() {  # the agent last seen still runs
  if (( __shellspan_proc )); then [[ -d /proc/$__shellspan_apid ]]
  else kill -0 "$__shellspan_apid" 2>/dev/null; fi
}
__shellspan_watch() {
  __shellspan_seen=$SECONDS
  (( __shellspan_seq < __shellspan_rot )) || __shellspan_rotate
  [[ -f $__shellspan_jf ]] || __shellspan_journal || __shellspan_jf=/dev/null  # removed by hand
  __shellspan_up && return
  local pid=''
  { read -r pid < "$__shellspan_dir/agent.pid"; } 2>/dev/null
  __shellspan_apid=${pid//[!0-9]/}
  : "${__shellspan_apid:=0}"
  # An agent is up: once it goes, the next may be started at once.
  __shellspan_up && { __shellspan_restart=0; return; }
  [[ ${SHELLSPAN_AGENT_AUTOSTART-1} != 0 ]] && (( SECONDS >= __shellspan_restart || __shellspan_apid != __shellspan_gone )) || return
  __shellspan_restart=$(( SECONDS + 10 )) __shellspan_gone=$__shellspan_apid __shellspan_apid=0
  # Immune to the hangup of this shell's process group: a shell that ends before the agent
  # has detached (started at the first prompt, the shell is still in that group) must not
  # take it along.
  ( trap '' HUP; SHELLSPAN_RUNTIME_DIR=$__shellspan_dir "$__shellspan_bin" agent --daemon </dev/null >/dev/null 2>&1 & )
}
__shellspan_rotate() {  # the next journal file
  (( ++__shellspan_gen ))
  __shellspan_journal || (( __shellspan_gen-- ))
}

# --- the command's text ------------------------------------------------------------------------
# Read from the history list, whatever the user's settings keep out of it. While a line is
# read, HISTCONTROL loses ignorespace (ignoreboth becomes ignoredups) and HISTIGNORE is set
# aside; both are put back before the command runs, and the entry is then taken out again if
# the user's settings would not have let it in (`history -d`; with HISTIGNORE, bash decides:
# `history -s` adds it back under the user's settings). So their history stays as it would
# have been. A line ignoredups kept out is a repeat of the entry before it: that is its text.
# `set +o history` cannot be undone from a prompt hook (bash restores it): the text is then
# what bash runs first (`$BASH_COMMAND`). The history entry is written to the scratch file
# h.PID and read back (no fork): written over from its start up to a NUL, never truncated (on
# ext4, a file truncated and written again is flushed to disk when closed).
#
# The hooks that run at every command are kept small: bash interprets every statement; what is
# seldom needed is in other functions.
__shellspan_line() {  # the line just read, slow path: __shellspan_txt, _fl, _brk
  local h='' n
  { HISTTIMEFORMAT='' builtin history 1; printf '\0'; } 1<>"$__shellspan_hf"
  IFS= read -r -d '' h <"$__shellspan_hf"
  n=${h%%[!0-9 ]*} h=${h#*[0-9][ *] }
  __shellspan_text "$n" "${h%$'\n'}" "${1-}"
}
__shellspan_text() {  # $1 entry number, $2 its text, $3 the text when it is not in the history
  __shellspan_txt='' __shellspan_fl='' __shellspan_brk=''
  if (( __shellspan_priv )); then
    __shellspan_priv=0 HISTCONTROL=$__shellspan_uhc
    (( ! __shellspan_hi )) || HISTIGNORE=$__shellspan_uhi
  fi
  if [[ -n $1 && -o history ]] && (( $1 > __shellspan_hnum )); then
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
# PS2's command substitution (a subshell, before each continuation line): note where the
# history entry of the command being typed ends, and whether it ends with a backslash (bash
# joins the lines in its history; the agent puts the line breaks back from these notes).
__shellspan_lines() {
  local h n
  [[ -n $__shellspan_lf ]] || return 0
  { HISTTIMEFORMAT='' builtin history 1; printf '\0'; } 1<>"$__shellspan_hf"
  IFS= read -r -d '' h <"$__shellspan_hf"
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
# The first DEBUG trap after PS0 armed it: the command starts. The common cases are inlined: a
# line that entered the history (HISTCMD moved past the last entry) and that the user's
# settings keep there as typed. With no ignorespace to undo, the entry goes straight from
# `history 1` into the journal; otherwise it is read back through the scratch file to see
# whether it starts with a space. Either way the record carries the entry as `history 1`
# printed it (the agent takes the number column off: flag h). bash copies a function's body
# at every call and interprets every statement: the per-command path is kept to a few
# statements, no `local`, and what is seldom needed is in other functions.
__shellspan_begin() {
  if (( HISTCMD > __shellspan_hnum && HISTCMD < 100000 \
        && ! (__shellspan_ml | __shellspan_began | __shellspan_hi | __shellspan_slow) )); then
    if (( ! __shellspan_priv )); then
      __shellspan_armed=0
      { printf 'B\037%s\037%s\037%s\037%s\037%s\037h\037\037' "$__shellspan_p" \
          "$(( __shellspan_began = ++__shellspan_seq ))" "$__shellspan_span" "$__shellspan_t0" "$PWD"
        builtin history 1; printf '\0'; } >>"$__shellspan_jf"
      return 0
    fi
    __shellspan_armed=0 __shellspan_priv=0 HISTCONTROL=$__shellspan_uhc __shellspan_hnum=$HISTCMD
    { builtin history 1; printf '\0'; } 1<>"$__shellspan_hf"
    IFS= read -r -d '' __shellspan_r <"$__shellspan_hf"
    if [[ $__shellspan_r == ??????' '[[:space:]]* ]]; then __shellspan_hidden  # ("%5d%c ")
    else
      printf 'B\037%s\037%s\037%s\037%s\037%s\037h\037\037%s\0' "$__shellspan_p" \
        "$(( __shellspan_began = ++__shellspan_seq ))" "$__shellspan_span" "$__shellspan_t0" \
        "$PWD" "$__shellspan_r" >>"$__shellspan_jf"
    fi
    return 0
  fi
  __shellspan_begin_slow
}
__shellspan_hidden() {  # the line in __shellspan_r (`history 1`) starts with a space
  # Kept out of the user's history: recorded, and marked.
  local h=${__shellspan_r#*[0-9][ *] }
  builtin history -d "$HISTCMD"
  [[ ${SHELLSPAN_HIDDEN_COMMANDS-record} != redact ]] || h=''
  printf 'B\037%s\037%s\037%s\037%s\037%s\037s\037\037%s\0' "$__shellspan_p" \
    "$(( __shellspan_began = ++__shellspan_seq ))" "$__shellspan_span" "$__shellspan_t0" \
    "$PWD" "${h%$'\n'}" >>"$__shellspan_jf"
}
__shellspan_begin_slow() {  # any other line: pasted, multi-line, HISTIGNORE, HISTTIMEFORMAT, ...
  __shellspan_armed=0
  (( ! __shellspan_began )) || __shellspan_pasted
  __shellspan_line "$BASH_COMMAND"  # (in a DEBUG trap: what bash runs)
  printf 'B\037%s\037%s\037%s\037%s\037%s\037%s\037%s\037%s\0' "$__shellspan_p" \
    "$(( __shellspan_began = ++__shellspan_seq ))" "$__shellspan_span" "$__shellspan_t0" \
    "$PWD" "$__shellspan_fl" \
    "$__shellspan_brk" "$__shellspan_txt" >>"$__shellspan_jf"
  return 0
}
# bash < 4.4 has no PS0: the DEBUG trap is armed at the end of PROMPT_COMMAND, so the first one
# after an empty line is PROMPT_COMMAND itself.
__shellspan_begin_nops0() {
  [[ $BASH_COMMAND != __shellspan_precmd* ]] || { __shellspan_armed=0; return 0; }
  __shellspan_now
  __shellspan_t0=$__shellspan_r
  (( __shellspan_mark )) && printf '\e]6973;C;%s;%s\a' "$__shellspan_sid" "$__shellspan_span" >&2
  __shellspan_begin
}
__shellspan_pasted() {  # armed again with no prompt between: a pasted line ended, one begins
  printf 'E\037%s\037%s\037%s\037%s\037\0' "$__shellspan_p" "$__shellspan_began" \
    "${EPOCHREALTIME:-$(( __shellspan_e0 + SECONDS )).0}" "$__shellspan_pst" >>"$__shellspan_jf"
  __shellspan_span=$__shellspan_half$(( 10000001 + __shellspan_seq ))
  TRACEPARENT=00-$__shellspan_sid-$__shellspan_span-01
}
__shellspan_precmd() {  # (globals, no `local`: set at every prompt, read nowhere else)
  __shellspan_st=$? __shellspan_ps=${PIPESTATUS[*]}
  if (( __shellspan_began )); then
    [[ $__shellspan_ps == "$__shellspan_st" && $__shellspan_bg == "${!:-0}" ]] || __shellspan_pipe
    printf 'E\037%s\037%s\037%s\037%s\037%s\0' "$__shellspan_p" "$__shellspan_began" \
      "${EPOCHREALTIME:-$(( __shellspan_e0 + SECONDS )).0}" "$__shellspan_st" "$__shellspan_ps" \
      >>"$__shellspan_jf"
    __shellspan_span=$__shellspan_half$(( 10000001 + __shellspan_seq )) __shellspan_began=0 \
      TRACEPARENT=00-$__shellspan_sid-$__shellspan_span-01 __shellspan_armed=0 \
      __shellspan_cwd=$PWD __shellspan_bg=${!:-0} __shellspan_hnum=$(( HISTCMD - 1 ))
  else
    (( ! (__shellspan_armed | __shellspan_ml | __shellspan_priv) )) \
      || __shellspan_seldom "$__shellspan_st" "$__shellspan_ps"
    __shellspan_armed=0 __shellspan_cwd=$PWD __shellspan_bg=${!:-0} __shellspan_hnum=$(( HISTCMD - 1 ))
  fi
  # All that seldom changes, in one test: the second, the prompts, the history settings.
  # shellcheck disable=SC2016  # our part of PS0 (literal) still in front
  [[ $SECONDS$__shellspan_chain == "${__shellspan_seen}0" && -o history \
     && ${PS0-} == '${__shellspan_e['* && ${HISTCONTROL-} == "$__shellspan_uhc" \
     && -z ${HISTIGNORE-}${HISTTIMEFORMAT+x} ]] || __shellspan_settle
  (( ! __shellspan_mark )) || printf '\e]6973;P;%s;%s\a' "$__shellspan_sid" "$__shellspan_root" >&2
  # Make the line about to be read enter the history (see above).
  (( ! __shellspan_hide )) || __shellspan_priv=1 HISTCONTROL=$__shellspan_phc
  return "$__shellspan_st"
}
__shellspan_pipe() {  # the pipeline status, unless it is not this line's
  # None for a line that started a background job (bash leaves PIPESTATUS as it was) or one
  # that does not end with $? (a function definition runs no pipeline).
  [[ $__shellspan_bg == "${!:-0}" && ( ${__shellspan_ps##* } == "$__shellspan_st" || -o pipefail ) ]] \
    || __shellspan_ps=''
}
__shellspan_settle() {  # the prompt when something of the test above moved
  (( SECONDS == __shellspan_seen && ! __shellspan_chain )) || __shellspan_tick
  [[ ${PS0-} == "$__shellspan_ps0"* ]] || __shellspan_prompts
  [[ ${HISTCONTROL-} == "$__shellspan_uhc" ]] || __shellspan_private_history
  __shellspan_hide=0 __shellspan_hi=0 __shellspan_slow=1
  [[ -n ${HISTTIMEFORMAT+x} || ! -o history ]] || __shellspan_slow=0
  if [[ -n ${HISTIGNORE-} ]]; then  # made private here, at every prompt while it is set
    __shellspan_priv=1 HISTCONTROL=$__shellspan_phc __shellspan_hi=1 __shellspan_uhi=$HISTIGNORE \
      HISTIGNORE=''
  elif [[ ${HISTCONTROL-} == *ignore[sb]* ]]; then
    __shellspan_hide=1
  fi
}
__shellspan_private_history() {  # the user's HISTCONTROL changed: what is used while reading
  __shellspan_uhc=${HISTCONTROL-} __shellspan_phc=${HISTCONTROL//ignorespace/}
  __shellspan_phc=${__shellspan_phc//ignoreboth/ignoredups}
}
__shellspan_tick() {  # once a second at most: the agent, the journal file, the prompts, the trap
  __shellspan_watch
  (( ! __shellspan_chain )) || __shellspan_boot
  [[ ${PS2-} == *__shellspan_lines* || -z $__shellspan_lf ]] || PS2=$__shellspan_ps2${PS2-}
}
__shellspan_prompts() {  # put our part back in front of PS0 (another tool replaced it)
  (( ! __shellspan_hasps0 )) || PS0=$__shellspan_ps0${PS0-}
}
__shellspan_seldom() {  # the prompt after a line that ran no DEBUG trap, or never ran
  if (( __shellspan_armed )); then  # it ran: ( subshell ), f() { ...; }
    __shellspan_chain=1  # (or another tool replaced the DEBUG trap)
    __shellspan_line
    printf 'C\037%s\037%s\037%s\037%s\037%s\037%s\037%s\037%s\037%s\037%s\037%s\0' \
      "$__shellspan_p" "$(( ++__shellspan_seq ))" "$__shellspan_span" "$__shellspan_t0" \
      "${EPOCHREALTIME:-$(( __shellspan_e0 + SECONDS )).0}" "$1" "$2" "$__shellspan_cwd" \
      "$__shellspan_fl" "$__shellspan_brk" "$__shellspan_txt" >>"$__shellspan_jf"
    __shellspan_span=$__shellspan_half$(( 10000001 + __shellspan_seq ))
    TRACEPARENT=00-$__shellspan_sid-$__shellspan_span-01
  elif (( __shellspan_priv && HISTCMD - 1 > __shellspan_hnum )); then
    __shellspan_line  # a line that never ran (a syntax error, Ctrl-C): only its history entry
  elif (( __shellspan_ml )); then  # notes of a multi-line command that never ran
    __shellspan_ml=0
    [[ -n $__shellspan_lf ]] && { : > "$__shellspan_lf"; } 2>/dev/null
  fi
  if (( __shellspan_priv )); then  # a line that added nothing to the history
    __shellspan_priv=0 HISTCONTROL=$__shellspan_uhc
    (( ! __shellspan_hi )) || HISTIGNORE=$__shellspan_uhi
  fi
}
# The DEBUG trap is chained with an existing one. A function (or sourced file) cannot see an
# existing DEBUG trap, so this runs from PROMPT_COMMAND at top level at the first prompt, and
# again when a command ran without the trap firing (another tool may have replaced it).
# shellcheck disable=SC2016  # top-level code, run from PROMPT_COMMAND
__shellspan_boot_code='{ trap -p DEBUG; printf "\0"; } 1<>"$__shellspan_hf" 2>/dev/null; __shellspan_trap; trap -- "$__shellspan_r" DEBUG; __shellspan_unboot'
__shellspan_trap() {  # the DEBUG trap to install, from the current one (in the scratch file)
  local t=''
  { IFS= read -r -d '' t <"$__shellspan_hf"; } 2>/dev/null
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
  printf 'X\037%s\037%s\037%s\037%s\0' "$__shellspan_p" \
    "${EPOCHREALTIME:-$(( __shellspan_e0 + SECONDS )).0}" "$st" "$how" >>"$__shellspan_jf"
  return "$st"
} 2>/dev/null
# Where this shell was started from, when no TRACEPARENT says so (`su -`, `sudo -i` clear the
# environment): the processes above it on the same terminal, nearest first, each with the
# TRACEPARENT it was started with if this user can read it (`pid[=traceparent] ...`, up to the
# first that has one). The agent links the session to the command of the first it knows.
__shellspan_ancestors() {
  local p=$$ l h tty='' pp tt tp kv n=0 out=''
  local -a env
  while (( n++ < 12 )) && { mapfile -t l < "/proc/$p/stat"; } 2>/dev/null && [[ -n ${l-} ]]; do
    h=${l:0:48}; h=${h%') '*}; l=${l:${#h}+2}  # after "pid (comm) ": state ppid pgrp sid tty
    l=${l#* }; pp=${l%% *}; l=${l#* }; l=${l#* }; l=${l#* }; tt=${l%% *}
    if [[ -z $tty ]]; then tty=$tt
    else
      [[ $tt == "$tty" && $tt != 0 ]] || break
      tp=''
      if { mapfile -d '' env < "/proc/$p/environ"; } 2>/dev/null \
         && [[ " ${env[*]}" == *" TRACEPARENT="* ]]; then
        for kv in "${env[@]}"; do [[ $kv == TRACEPARENT=* ]] && { tp=${kv#TRACEPARENT=}; break; }; done
      fi
      out+=" $p${tp:+=$tp}"
      [[ -z $tp ]] || break
    fi
    (( pp > 1 )) || break
    p=$pp
  done
  __shellspan_r=${out# }
}

# --- start -------------------------------------------------------------------------------------
# h.PID: builtins' output is read back through it (no fork);
# l.PID: where a multi-line command's lines end (written by PS2's command substitution).
if [[ -n $__shellspan_dir ]] && __shellspan_private "$__shellspan_dir/h.$$" \
   && __shellspan_journal; then
__shellspan_p=$$$'\037'$__shellspan_sid __shellspan_hf=$__shellspan_dir/h.$$
__shellspan_private "$__shellspan_dir/l.$$" && __shellspan_lf=$__shellspan_dir/l.$$
__shellspan_r=''
[[ -n ${TRACEPARENT-} || ! -d /proc/$$ ]] || __shellspan_ancestors
printf 'S\037%s\037%s\037bash\037%s\037%s\037%s\037%s\037%s\037%s\037%s\037%s\037%s\0' \
  "$__shellspan_p" "${EPOCHREALTIME:-$(( __shellspan_e0 + SECONDS )).0}" "$__shellspan_root" \
  "$PPID" "${SHLVL-}" "${TRACEPARENT-}" "${USER-}" "${SSH_CONNECTION:-${SSH_CLIENT-}}" \
  "$BASH_VERSION" "$__shellspan_r" "$PWD" >>"$__shellspan_jf"
export SHELLSPAN_SESSION_ID=$__shellspan_sid
export TRACEPARENT=00-$__shellspan_sid-$__shellspan_span-01
__shellspan_watch
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
# Chain an existing EXIT trap (read through the scratch file: no command substitution, no fork).
__shellspan_r=''
{ trap -p EXIT; printf '\0'; } 1<>"$__shellspan_hf" 2>/dev/null
{ IFS= read -r -d '' __shellspan_r <"$__shellspan_hf"; } 2>/dev/null
__shellspan_r=${__shellspan_r#trap -- }; __shellspan_r=${__shellspan_r%$'\n'}
__shellspan_r=${__shellspan_r% EXIT}
[[ -n $__shellspan_r ]] && eval "__shellspan_r=$__shellspan_r"
# shellcheck disable=SC2064  # the existing trap's text is embedded now, on purpose
trap "__shellspan_exit${__shellspan_r:+; $__shellspan_r}" EXIT
fi
fi
