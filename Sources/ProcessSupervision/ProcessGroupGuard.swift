import Foundation

/// Runs a command under a small bash guard that leads its own process group (Foundation starts
/// every child in a group of its own) and stops that whole group when the guard's standard
/// input closes: when the parent exits, even by SIGKILL, nothing the command started outlives
/// it. Used for model servers and training jobs.
public enum ProcessGroupGuard {
    /// Starts `command` under the guard. The command's standard output goes to standard error,
    /// which `standardErrorHandler` receives.
    public static func start(_ command: [String], name: String, environment: [String: String]? = nil,
                             standardErrorHandler: (@Sendable (Data) -> Void)? = nil) throws -> ChildProcess
    {
        try ChildProcess(executable: "/bin/bash", arguments: ["-c", script, name] + command, environment: environment,
                         unblockingSignals: true, standardErrorHandler: standardErrorHandler)
    }

    /// SIGTERM to the process group the guard leads, then SIGKILL to whatever is left after
    /// `grace`; returns once the guard has exited.
    public static func stopGroup(of process: ChildProcess, grace: Duration) async {
        let group = process.pid
        kill(-group, SIGCONT)
        kill(-group, SIGTERM)
        process.closeStandardInput()
        let deadline = ContinuousClock.now + grace
        while kill(-group, 0) == 0, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(50))
        }
        if kill(-group, 0) == 0 { kill(-group, SIGKILL) }
        _ = await process.waitForExit()
    }

    /// Runs `"$@"` with the shell's standard input kept aside; when that input ends (the parent
    /// stopped or died), signals the whole group.
    ///
    /// The command and the watchdog close every inherited descriptor above the ones they use:
    /// Foundation learns that a child exited when a socket the child inherited is closed by
    /// every holder, so a watchdog that kept it would hide the shell's exit from the parent.
    /// (No redirection around that loop: bash would save standard error on a high descriptor,
    /// the loop would close it, and the command would write into nothing.)
    public static let script = """
        close_from() { local fd; for fd in /proc/$BASHPID/fd/*; do fd=${fd##*/}; [ "$fd" -ge "$1" ] && [ -e "/proc/$BASHPID/fd/$fd" ] && eval "exec $fd>&-"; done; true; }
        exec 3<&0
        ( close_from 3; exec "$@" </dev/null 1>&2 ) &
        server=$!
        ( close_from 4; cat <&3 >/dev/null; kill -TERM 0 ) &
        exec 3<&-
        wait "$server"
        """
}
