import Wire

/// The coordinator's end of the record stream to the trainer, as rules without I/O (like
/// ``WorkLedger`` for leases): voted records are numbered here, wait in sequence order, go to
/// the trainer one batch at a time, and leave only when the trainer acknowledges them as
/// durable. The coordinator does the calls and the journal writes; this type decides what is
/// sent, what must be journaled first (write-ahead), and what an acknowledgement settles.
///
/// The rules:
/// - Sequence numbers start after the journal's (or the trainer's, if it holds more) and never
///   repeat; a record keeps its number across resends.
/// - One batch is in flight at a time, made of the oldest waiting records.
/// - A batch may go only once the journal holds every record in it durably.
/// - An acknowledgement of sequence `s` settles every waiting record up to `s`; what the trainer
///   did not store is sent again in the next batch. An acknowledgement below an earlier one
///   settles nothing again and un-settles nothing.
struct RecordStream {
    /// Records not yet acknowledged, in sequence order.
    private(set) var waiting: [EncodedRecord]
    /// How many of the first `waiting` records are in the batch the trainer is storing now.
    private(set) var inFlight = 0
    /// The number the next record gets.
    private(set) var nextSequence: UInt64
    /// The highest sequence the trainer acknowledged as durable.
    private(set) var durable: UInt64
    /// Records up to this sequence are durable in the journal.
    private(set) var journaledThrough: UInt64

    /// A fresh stream, or one resumed from the journal (whose records are all journaled).
    init(waiting: [EncodedRecord] = [], nextSequence: UInt64 = 1, durable: UInt64 = 0) {
        self.waiting = waiting
        self.nextSequence = nextSequence
        self.durable = durable
        self.journaledThrough = nextSequence - 1
    }

    /// No record waits and none is in flight.
    var isDrained: Bool { waiting.isEmpty && inFlight == 0 }

    /// Whether `window` records or more wait (then no new question should be read).
    func isFull(window: Int) -> Bool { waiting.count >= window }

    /// Waiting records the trainer does not hold yet, if it is durable through `sequence`.
    func toSend(afterTrainerHolds sequence: UInt64) -> Int { waiting.count { $0.sequence > sequence } }

    /// Numbers a voted record and queues it.
    /// - Returns: The record as the journal and the trainer take it.
    mutating func append(_ record: Selfimprove_V1_TrainingRecord) -> EncodedRecord {
        var record = record
        record.sequence = nextSequence
        nextSequence += 1
        let encoded = EncodedRecord(record)
        waiting.append(encoded)
        return encoded
    }

    /// A batch to send.
    struct Batch {
        var records: [EncodedRecord]
        /// The journal must be made durable through the last record before the batch goes.
        var needsJournalSync: Bool

        /// The batch as the trainer's `append` takes it.
        var wire: Selfimprove_V1_EncodedRecordBatch {
            var batch = Selfimprove_V1_EncodedRecordBatch()
            batch.records = records.map(\.bytes)
            return batch
        }
    }

    /// The oldest waiting records, at most `limit`, now in flight; nil while a batch is in
    /// flight or nothing waits.
    mutating func nextBatch(limit: Int) -> Batch? {
        guard inFlight == 0, !waiting.isEmpty else { return nil }
        let records = Array(waiting.prefix(max(1, limit)))
        inFlight = records.count
        return Batch(records: records, needsJournalSync: (records.last?.sequence ?? 0) > journaledThrough)
    }

    /// The batch in flight ended (stored, failed or abandoned): its unacknowledged records wait
    /// to be sent again.
    mutating func batchEnded() { inFlight = 0 }

    /// The journal is durable through every record numbered so far.
    mutating func journalSynced() { journaledThrough = nextSequence - 1 }

    /// The journal is durable through `sequence` (a sync that began when that was the last number).
    mutating func journalSynced(through sequence: UInt64) { journaledThrough = max(journaledThrough, sequence) }

    /// What an acknowledgement settled.
    struct Acknowledgement {
        /// Records the trainer now holds durably (they left the window), in order.
        var stored: [EncodedRecord] = []
        /// The durable sequence moved forward.
        var advanced = false
        /// The trainer acknowledged less than before (its output replaced?): the earlier,
        /// higher acknowledgement stands and nothing is sent again.
        var regressedFrom: UInt64?
        /// The trainer holds numbers the stream had not given out: numbering continues after
        /// them, and this was the number that would have come next.
        var renumberedFrom: UInt64?
        /// Records of the batch the trainer did not store (sent again).
        var missing = 0
    }

    /// Applies the trainer's durable sequence.
    /// - Parameter sent: How many records the acknowledged batch carried (0 for a sync).
    mutating func acknowledge(durableSequence: UInt64, sent: Int) -> Acknowledgement {
        var result = Acknowledgement()
        if durableSequence < durable { result.regressedFrom = durable }
        if durableSequence >= nextSequence {
            result.renumberedFrom = nextSequence
            nextSequence = durableSequence + 1
        }
        result.advanced = durableSequence > durable
        durable = max(durable, durableSequence)
        let settled = waiting.prefix { $0.sequence <= durable }.count
        result.stored = Array(waiting.prefix(settled))
        waiting.removeFirst(settled)
        result.missing = max(0, sent - settled)
        return result
    }
}
