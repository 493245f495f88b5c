import ClusterNodes
import Foundation

/// An `sbatch` script for a cluster config (`selfimprove slurm`): one job, one task per node of
/// the config, each task choosing its role by its task id (`SLURM_PROCID`: the coordinator
/// first, then the samplers, the verifiers, the trainer, as the config lists them). Other nodes
/// find the coordinator on the first host of Slurm's node list. The job asks to be requeued
/// on preemption; a requeued job starts the same tasks again, and the coordinator resumes from
/// its journal in the output folder (which must be on a file system every node sees).
public struct SlurmScript {
    public struct Options {
        var configPath: String
        var workdir: String
        var binary: String
        var basePort: Int
        var nodes: Int?
        var partition: String?
        var time: String?
        var gpusPerNode: Int
        /// The user's `--set` overrides, passed on to every node.
        var overrides: [String]
        /// The output folder of `--output` (absolute), passed on to every node.
        var output: String?
        /// Where ``SlurmScript/edits`` are written for the nodes to read (absolute, beside the script).
        var editsPath: String

        public init(configPath: String, workdir: String, binary: String, basePort: Int, nodes: Int?, partition: String?, time: String?,
                    gpusPerNode: Int, overrides: [String], output: String?, editsPath: String) {
            self.configPath = configPath
            self.workdir = workdir
            self.binary = binary
            self.basePort = basePort
            self.nodes = nodes
            self.partition = partition
            self.time = time
            self.gpusPerNode = gpusPerNode
            self.overrides = overrides
            self.output = output
            self.editsPath = editsPath
        }
    }

    public let config: ClusterConfig
    public let options: Options

    public init(config: ClusterConfig, options: Options) {
        self.config = config
        self.options = options
    }

    /// The run's output folder: the job's log goes there.
    public var outputFolder: String { options.output ?? config.output.path }

    /// What the job changes in the config for every node: each listens on all interfaces (the
    /// others dial the address it advertises, its host name). Written to `editsPath`.
    public var edits: [ConfigEdit] {
        let everywhere = ConfigEdit.Value.string("0.0.0.0")
        return [ConfigEdit(["coordinator", "host"], everywhere), ConfigEdit(["trainer", "host"], everywhere)]
            + (0 ..< config.samplerEntries).map { ConfigEdit(["samplers", String($0), "host"], everywhere) }
            + config.verifierEntries.indices.map { ConfigEdit(["verifiers", String($0), "host"], everywhere) }
    }

    public func render() -> String {
        let nodes = config.nodes
        var header = [
            "#SBATCH --job-name=\(config.name)",
            "#SBATCH --ntasks=\(nodes.count)",
            "#SBATCH --requeue",
            "#SBATCH --open-mode=append",
            "#SBATCH --output=\(outputFolder)/slurm-%j.out",
        ]
        if let count = options.nodes { header.append("#SBATCH --nodes=\(count)") }
        if let partition = options.partition { header.append("#SBATCH --partition=\(partition)") }
        if let time = options.time { header.append("#SBATCH --time=\(time)") }
        if options.gpusPerNode > 0 { header.append("#SBATCH --gres=gpu:\(options.gpusPerNode)") }
        // Every node gets the user's overrides, the output folder and the job's edits (listening
        // on all interfaces, on the port of its task).
        let setArguments = (options.overrides.map { "--set \(Self.quote($0))" } + (options.output.map { ["--output \(Self.quote($0))"] } ?? [])
            + ["--edits \(Self.quote(options.editsPath))"]).joined(separator: " ")
        var cases: [String] = []
        for (index, node) in nodes.enumerated() {
            let coordinator = node.role == .coordinator ? "" : " --coordinator \"tcp://$COORDINATOR_HOST:$SELFIMPROVE_BASE_PORT\""
            cases.append("    \(index)) exec \"$SELFIMPROVE\" node --config \"$SELFIMPROVE_CONFIG\" \(setArguments) --role \(node.role.rawValue) "
                + "--name \(Self.quote(node.address.name))\(coordinator) --port \"$port\" --advertise \"tcp://$(hostname):$port\" ;;")
        }
        return """
        #!/bin/bash
        # Written by `selfimprove slurm \(options.configPath)`: the cluster as one Slurm job, one task per
        # node (task 0 the coordinator, then samplers, verifiers, trainer). Submit with sbatch. A
        # preempted or requeued job runs again and resumes from the coordinator's journal in
        # \(outputFolder).
        \(header.joined(separator: "\n"))
        set -euo pipefail
        cd \(Self.quote(options.workdir))
        export SELFIMPROVE="${SELFIMPROVE:-\(options.binary)}"
        export SELFIMPROVE_CONFIG=\(Self.quote(options.configPath))
        export SELFIMPROVE_BASE_PORT=\(options.basePort)
        COORDINATOR_HOST="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"
        export COORDINATOR_HOST
        mkdir -p \(Self.quote(outputFolder))
        echo "selfimprove: job $SLURM_JOB_ID (restart ${SLURM_RESTART_COUNT:-0}) on $SLURM_JOB_NODELIST, coordinator on $COORDINATOR_HOST"

        # One task per node of the config; each picks its role by its task id.
        selfimprove_task() {
          local port=$((SELFIMPROVE_BASE_PORT + SLURM_PROCID))
          case "$SLURM_PROCID" in
        \(cases.joined(separator: "\n"))
            *) echo "selfimprove: no node for task $SLURM_PROCID" >&2; exit 1 ;;
          esac
        }
        export -f selfimprove_task
        srun --ntasks=\(nodes.count) --kill-on-bad-exit=0 bash -c selfimprove_task

        """
    }

    /// A word quoted for bash.
    public static func quote(_ word: String) -> String {
        word.allSatisfy { $0.isLetter || $0.isNumber || "-_./:=,@".contains($0) } ? word : "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}
