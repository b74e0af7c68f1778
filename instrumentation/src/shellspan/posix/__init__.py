"""bash and zsh: hook scripts, the records they write, and the per-user agent that reads them.

The hooks (``shellspan.bash``, ``shellspan.zsh``, printed by ``shellspan init``) append one
record per event to their session's journal file in the runtime directory; the agent reads the
journals, turns the records into spans (``shellspan.spans``) and hands them to the shared
exporter. Modules, by job:

- ``hooks``: the hook scripts and ``shellspan init``;
- ``runtime``: where the runtime directory is (the rule the hook scripts follow too);
- ``records``: the record grammar between hooks and agent (the only Python that knows it);
- ``journal``: reading the journal files (where each was read to survives the agent);
- ``procfs``: what the agent reads about processes from /proc;
- ``sessions``: records → sessions → spans;
- ``agent``: the reading loop (``shellspan agent``);
- ``daemon``: detaching, the lock and the pid file;
- ``state``: the state file that ``status`` reads and a restarted agent takes over;
- ``status``: the bash/zsh part of ``shellspan status`` and ``doctor``.

Nothing is imported here: ``shellspan init`` runs at every shell start that uses the eval form.
"""
