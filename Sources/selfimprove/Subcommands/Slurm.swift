import ArgumentParser
import ClusterNodes
import CommandLineSupport
import Deployment
import Foundation

/// `selfimprove slurm CONFIG`: an sbatch script that runs the cluster as one Slurm job.
struct Slurm: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write an sbatch script that runs a cluster config as one Slurm job (requeued on preemption, resumed from the journal).",
        discussion: """
        One task per node of the config (--ntasks), task 0 the coordinator; each task runs \
        `selfimprove node` for its role, listening on --base-port plus its task id; the others find the \
        coordinator on the first host of the job's node list. The job is requeueable: after a \
        preemption or `scontrol requeue` it starts again and the coordinator resumes from its journal, \
        so the output folder must be on a file system every node of the job sees. The nodes' changes \
        to the config (listening on all interfaces) are written beside the script (OUT.edits.json), \
        which every node of the job must see too.
        """
    )

    @OptionGroup var configOptions: ConfigOptions

    @Argument(help: "The cluster config (YAML).")
    var config: String

    @Option(help: "Where to write the script.")
    var out = "selfimprove.sbatch"

    @Option(help: "The first task's port (task k listens on base + k).")
    var basePort = 7400

    @Option(help: "Machines for the job (#SBATCH --nodes; default: Slurm's choice).")
    var nodes: Int?

    @Option(help: "#SBATCH --partition.")
    var partition: String?

    @Option(help: "#SBATCH --time (e.g. 2:00:00).")
    var time: String?

    @Option(help: "GPUs per machine (#SBATCH --gres=gpu:N).")
    var gpusPerNode = 0

    @Option(help: "The selfimprove executable on the compute nodes (default: this one).")
    var binary: String?

    func validate() throws {
        guard (1024 ... 65000).contains(basePort) else { throw ValidationError("--base-port must be between 1024 and 65000") }
        guard gpusPerNode >= 0, nodes.map({ $0 >= 1 }) ?? true else { throw ValidationError("--nodes and --gpus-per-node must be positive") }
    }

    func run() async throws {
        let cluster = try configOptions.loadForAllInterfaces(config)
        let executable = binary ?? URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL.path
        let workdir = FileManager.default.currentDirectoryPath
        let configPath = URL(fileURLWithPath: config, relativeTo: URL(fileURLWithPath: workdir + "/")).standardizedFileURL.path
        let destination = URL(fileURLWithPath: out).standardizedFileURL
        let editsFile = destination.appendingPathExtension("edits.json")
        let script = SlurmScript(config: cluster, options: .init(
            configPath: configPath, workdir: workdir, binary: executable, basePort: basePort, nodes: nodes, partition: partition,
            time: time, gpusPerNode: gpusPerNode, overrides: configOptions.overrides,
            output: configOptions.output.map { URL(fileURLWithPath: $0).standardizedFileURL.path }, editsPath: editsFile.path))
        // Slurm opens the job's log (#SBATCH --output) in the output folder before the script runs.
        try FileManager.default.createDirectory(at: URL(fileURLWithPath: script.outputFolder), withIntermediateDirectories: true)
        try ConfigEdit.write(script.edits, to: editsFile)
        try Data(script.render().utf8).write(to: destination, options: .atomic)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: destination.path)
        print(destination.path)
    }
}
