import ActorCluster
import CoreMetrics
import Distributed
import Foundation
import Logging
import Metrics
import SelfImproveCore
import SwiftProtobuf
import Wire

/// The trainer node's actor: takes the coordinator's record stream and stores it durably
/// (``TrainerSink``). The reply to ``append(_:)`` is the acknowledgement: it is sent only after
/// the records are on disk, and names the highest durable sequence number.
public distributed actor TrainerActor: ClusterCallable {
    public typealias ActorSystem = ClusterSystem

    /// The key the trainer checks in under.
    public static let key = ReceptionKey<TrainerActor>("trainer")

    public static let wireMethods: [WireMethod<TrainerActor>] = [
        .init("Trainer.append") { try await $0.append($1.next()) },
        .init("Trainer.durableSequence") { actor, _ in try await actor.durableSequence() },
        .init("Trainer.finish") { actor, _ in try await actor.finish() },
    ]

    private let sink: TrainerSink
    private let prompts: PromptBuilder
    private let formats: [TrainingExample.Format]
    private let logger: Logger
    private let metrics: TrainerMetrics
    private let finished: @Sendable () -> Void
    private let callers: CallerChecks

    /// Opens (and repairs) the output folder.
    /// - Parameter callers: Who may append and finish (the coordinator only).
    /// - Throws: If the folder's files cannot be opened.
    public init(folder: URL, prompts: PromptBuilder, formats: [TrainingExample.Format], callers: CallerChecks, logger: Logger,
                actorSystem: ClusterSystem, onFinish: @escaping @Sendable () -> Void = {}) throws
    {
        self.actorSystem = actorSystem
        self.callers = callers
        let sink = try TrainerSink(folder: folder)
        self.sink = sink
        self.prompts = prompts
        self.formats = formats
        self.logger = logger
        self.metrics = TrainerMetrics(node: actorSystem.configuration.nodeName)
        self.finished = onFinish
        for repair in sink.repairs { logger.warning("Repaired the output on open", metadata: ["repair": "\(repair)"]) }
        logger.info("Trainer output open", metadata: [
            "folder": "\(folder.path)", "records": "\(sink.recordCount)", "durable_sequence": "\(sink.durableSequence)",
        ])
    }

    /// Stores a batch (in sequence order) and acknowledges it once it is durable. Records at or
    /// below the durable sequence, or for a question already stored, are skipped.
    ///
    /// The batch comes with its records encoded (the coordinator encodes each once, for its
    /// journal and this stream); a ``Selfimprove_V1_RecordBatch`` has the same bytes.
    /// - Throws: ``RemoteCallError`` when a record does not decode (nothing of the batch is
    ///   stored), or when the caller is not the coordinator (`Unauthorized`).
    public distributed func append(_ batch: Selfimprove_V1_EncodedRecordBatch) throws -> Selfimprove_V1_AppendReceipt {
        try callers.requireCoordinator("Trainer.append", logger: logger)
        let records = try batch.records.enumerated().map { index, bytes in
            do {
                return SinkRecord(wire: try Selfimprove_V1_TrainingRecord(serializedBytes: bytes), prompts: prompts, formats: formats)
            } catch {
                throw RemoteCallError(code: RemoteCallError.argumentsInvalid, typeName: "",
                                      message: "Trainer.append: record \(index + 1) of \(batch.records.count) is not a valid TrainingRecord: \(error)")
            }
        }
        let before = (records: sink.recordCount, examples: sink.exampleCount)
        try sink.append(records)
        metrics.records.increment(by: sink.recordCount - before.records)
        metrics.examples.increment(by: sink.exampleCount - before.examples)
        metrics.durableSequence.record(Int64(clamping: sink.durableSequence))
        let skipped = records.count - (sink.recordCount - before.records)
        if skipped > 0 {
            logger.debug("Skipped records already stored", metadata: ["count": "\(skipped)"])
        }
        return receipt()
    }

    /// The highest durable sequence number (0 for an empty output), for a coordinator resuming
    /// the stream.
    public distributed func durableSequence() -> Selfimprove_V1_AppendReceipt {
        receipt()
    }

    /// The run is over: the node may stop.
    /// - Throws: `Unauthorized` when the caller is not the coordinator (the node goes on).
    public distributed func finish() throws -> Selfimprove_V1_Empty {
        try callers.requireCoordinator("Trainer.finish", logger: logger)
        finished()
        return Selfimprove_V1_Empty()
    }

    private func receipt() -> Selfimprove_V1_AppendReceipt {
        var receipt = Selfimprove_V1_AppendReceipt()
        receipt.durableSequence = sink.durableSequence
        receipt.records = UInt64(sink.recordCount)
        receipt.examples = UInt64(sink.exampleCount)
        return receipt
    }
}
