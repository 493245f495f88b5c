import Foundation
import ProcessSupervision
import Testing

/// A single-node Slurm cluster on this machine, for one test: munged, slurmctld and slurmd
/// started here (no systemd) with their state, sockets and logs in `folder`, on free ports.
private struct LocalSlurm {
    let folder: URL
    let conf: URL
    var environment: [String: String] {
        var environment = ProcessInfo.processInfo.environment
        environment["SLURM_CONF"] = conf.path
        return environment
    }

    static var available: Bool {
        ["/usr/sbin/slurmctld", "/usr/sbin/slurmd", "/usr/sbin/munged", "/usr/bin/sbatch"].allSatisfy {
            FileManager.default.isExecutableFile(atPath: $0)
        }
    }

    /// Starts the daemons and waits for the node to be idle.
    func start() async throws {
        for sub in ["spool", "state", "munge", "log"] {
            try FileManager.default.createDirectory(at: folder.appendingPathComponent(sub), withIntermediateDirectories: true)
        }
        let munge = folder.appendingPathComponent("munge")
        // munge's key: random bytes, readable by root only (what mungekey writes).
        var generator = SystemRandomNumberGenerator()
        try Data((0 ..< 1024).map { _ in UInt8.random(in: 0 ... 255, using: &generator) }).write(to: munge.appendingPathComponent("munge.key"))
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: munge.appendingPathComponent("munge.key").path)
        try await Self.daemon("/usr/sbin/munged", ["--key-file=\(munge.path)/munge.key", "--socket=\(munge.path)/munge.socket", "--pid-file=\(munge.path)/munged.pid",
                                           "--log-file=\(munge.path)/munged.log", "--seed-file=\(munge.path)/seed", "--force"])
        // The short host name, as slurmd names its node (gethostname: no name lookup).
        var buffer = [CChar](repeating: 0, count: 256)
        gethostname(&buffer, buffer.count)
        let host = String(cString: buffer).split(separator: ".").first.map(String.init) ?? "localhost"
        let ports = try RunOutputChecks.freePorts(2)
        try """
        ClusterName=selfimprove-test
        SlurmctldHost=\(host)
        SlurmctldPort=\(ports[0])
        SlurmdPort=\(ports[1])
        SlurmUser=root
        SlurmdUser=root
        AuthType=auth/munge
        CredType=cred/munge
        AuthInfo=socket=\(munge.path)/munge.socket
        ProctrackType=proctrack/linuxproc
        TaskPlugin=task/none
        SelectType=select/cons_tres
        SelectTypeParameters=CR_Core
        JobAcctGatherType=jobacct_gather/none
        AccountingStorageType=accounting_storage/none
        MpiDefault=none
        ReturnToService=2
        SlurmdParameters=config_overrides
        StateSaveLocation=\(folder.path)/state
        SlurmdSpoolDir=\(folder.path)/spool
        SlurmctldPidFile=\(folder.path)/slurmctld.pid
        SlurmdPidFile=\(folder.path)/slurmd.pid
        SlurmctldLogFile=\(folder.path)/log/slurmctld.log
        SlurmdLogFile=\(folder.path)/log/slurmd.log
        JobRequeue=1
        KillWait=5
        NodeName=\(host) CPUs=16 RealMemory=1000 State=UNKNOWN
        PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE

        """.write(to: conf, atomically: true, encoding: .utf8)
        try await Self.daemon("/usr/sbin/slurmctld", ["-f", conf.path])
        try await Self.daemon("/usr/sbin/slurmd", ["-f", conf.path])
        try await RunOutputChecks.waitUntilAsync("the Slurm node is idle", seconds: 30) {
            (try? await output("/usr/bin/sinfo", ["-h", "-o", "%T"]))?.contains("idle") == true
        }
    }

    /// Stops every daemon it started (by their pid files) and cancels what is left of jobs.
    func stop() async {
        _ = try? await output("/usr/bin/scancel", ["--full", "-u", "root"])
        for file in ["slurmd.pid", "slurmctld.pid", "munge/munged.pid"] {
            if let text = try? String(contentsOf: folder.appendingPathComponent(file), encoding: .utf8), let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
                kill(pid, SIGTERM)
                for _ in 0 ..< 50 where kill(pid, 0) == 0 { try? await Task.sleep(for: .milliseconds(100)) }
                if kill(pid, 0) == 0 { kill(pid, SIGKILL) }
            }
        }
    }

    /// Runs a command with this cluster's SLURM_CONF; returns its output (standard output and
    /// error together).
    func output(_ executable: String, _ arguments: [String]) async throws -> String {
        let process = try ChildProcess(executable: "/bin/sh", arguments: ["-c", "exec \"$0\" \"$@\" 1>&2", executable] + arguments,
                                       environment: environment, unblockingSignals: true)
        let status = await process.waitForExit()
        guard status == 0 else { throw SlurmFailure("\(executable) \(arguments.joined(separator: " ")) failed (\(status)): \(process.standardErrorTail)") }
        return process.standardErrorTail
    }

    func run(_ executable: String, _ arguments: [String]) async throws { _ = try await output(executable, arguments) }

    /// Starts a daemon that forks into the background with no descriptor of this process open
    /// (its output goes to /dev/null, its logs are files; any other inherited descriptor, such
    /// as a pipe this test reads to its end, is closed first).
    static func daemon(_ executable: String, _ arguments: [String]) async throws {
        let script = #"for fd in $(ls /proc/$$/fd); do [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done 2>/dev/null; exec "$0" "$@" </dev/null >/dev/null 2>&1"#
        let process = try ChildProcess(executable: "/bin/bash", arguments: ["-c", script, executable] + arguments, unblockingSignals: true)
        let status = await process.waitForExit()
        guard status == 0 else { throw SlurmFailure("\(executable) did not start (\(status)); its log is in the test's folder") }
    }

    static func run(_ executable: String, _ arguments: [String]) async throws {
        let process = try ChildProcess(executable: executable, arguments: arguments)
        let status = await process.waitForExit()
        guard status == 0 else { throw SlurmFailure("\(executable) failed (\(status)): \(process.standardErrorTail)") }
    }

    /// A job's state (`RUNNING`, `PENDING`, `COMPLETED`, ...).
    func state(of job: String) async throws -> String {
        let text = try await output("/usr/bin/scontrol", ["show", "job", job])
        return text.components(separatedBy: "JobState=").dropFirst().first?.prefix { $0.isLetter }.description ?? "?"
    }
}

struct SlurmFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// `selfimprove slurm`: the generated sbatch script submitted to real Slurm daemons, requeued
/// mid-run, and the run finishing with every question exactly once.
@Suite("Slurm", .serialized)
struct SlurmTests {
    @Test(.timeLimit(.minutes(4)), .enabled(if: getuid() == 0, "the Slurm daemons are started here as root (slurmd runs jobs as their users); not root"))
    func aRequeuedJobResumesAndStoresEveryQuestionOnce() async throws {
        try #require(LocalSlurm.available, "slurm-wlm and munge are missing: run cluster/setup-test-tools (cluster/test does)")
        let folder = try RunTestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let slurm = LocalSlurm(folder: folder.appendingPathComponent("slurm"), conf: folder.appendingPathComponent("slurm/slurm.conf"))
        do {
            try await slurm.start()
        } catch {
            let logs = ["log/slurmctld.log", "log/slurmd.log", "munge/munged.log"].map { name in
                "\(name): " + ((try? String(contentsOf: slurm.folder.appendingPathComponent(name), encoding: .utf8))?.suffix(1500) ?? "none")
            }
            await slurm.stop()
            Issue.record("Slurm did not start: \(logs.joined(separator: "\n"))")
            throw error
        }
        do {
            try await requeueMidRun(slurm, folder: folder)
        } catch {
            await slurm.stop()
            throw error
        }
        await slurm.stop()
        #expect(try RunOutputChecks.processes(withArguments: [folder.path]).isEmpty, "processes left behind")
    }

    private func requeueMidRun(_ slurm: LocalSlurm, folder: URL) async throws {
        let output = folder.appendingPathComponent("out")
        let script = folder.appendingPathComponent("run.sbatch")
        let basePort = try RunOutputChecks.freeConsecutivePorts(5)   // task k listens on base + k
        let write = try ChildProcess(executable: RunTestSupport.executable(), arguments: [
            "slurm", "cluster/synthetic.yaml", "--out", script.path, "--base-port", "\(basePort)", "--output", output.path,
            "--set", "dataset.limit=200", "--set", "samplers.0.backend.time_to_first_token=500ms", "--set", "security.plaintext_network=true",
        ], workingDirectory: RunTestSupport.repository)
        #expect(await write.waitForExit() == 0, "slurm failed: \(write.standardErrorTail)")
        #expect(write.standardErrorTail.contains("warning: the nodes listen on every interface without CURVE"))
        let text = try String(contentsOf: script, encoding: .utf8)
        #expect(text.contains("#SBATCH --requeue") && text.contains("#SBATCH --ntasks=5"))

        let job = try await slurm.output("/usr/bin/sbatch", ["--parsable", script.path]).trimmingCharacters(in: .whitespacesAndNewlines)
        try await RunOutputChecks.waitForRecords(in: output, atLeast: 40)
        try await slurm.run("/usr/bin/scontrol", ["requeue", job])
        // A requeued job waits two minutes before it may start again; start it now.
        try await RunOutputChecks.waitUntilAsync("the job is requeued", seconds: 30) { (try? await slurm.state(of: job)) == "PENDING" }
        try await slurm.run("/usr/bin/scontrol", ["update", "JobId=\(job)", "StartTime=now"])
        try await RunOutputChecks.waitUntilAsync("the requeued job completes", seconds: 120) {
            let state = (try? await slurm.state(of: job)) ?? "?"
            if ["FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY"].contains(state) {
                throw SlurmFailure("job \(job) ended \(state): \((try? String(contentsOf: output.appendingPathComponent("slurm-\(job).out"), encoding: .utf8))?.suffix(3000) ?? "")")
            }
            return state == "COMPLETED"
        }
        let log = try String(contentsOf: output.appendingPathComponent("slurm-\(job).out"), encoding: .utf8)
        #expect(log.contains("(restart 0)") && log.contains("(restart 1)"), "the job ran twice: \(log.suffix(2000))")
        let ids = try RunOutputChecks.datasetIDs(RunTestSupport.repository.appendingPathComponent("cluster/data/arithmetic-200.jsonl"), limit: 200)
        let manifest = try RunOutputChecks.verifyOutput(output, m: 8, questions: ids)
        #expect(manifest["status"] as? String == "finished")
        #expect((manifest["resumptions"] as? Int ?? 0) >= 1, "the second run resumed from the journal")
    }
}
