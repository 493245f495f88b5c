import ActorCluster
import Backends
import CoreMetrics
import Distributed
import Foundation
import Logging
import Metrics
import SelfImproveCore
import Wire

/// A coordinator's record stream to the trainer (its rules: ``RecordStream``) and the journal that
/// makes it crash-safe: every record is journaled before the trainer may store it.
extension CoordinatorActor {
    func recordReady(_ verdict: GroupVerdict) {
        guard outcome == nil else { return }
        progress.add(verdict)
        admitted[verdict.record.questionID] = nil
        let encoded = stream.append(verdict.record)
        journal.completed(encoded, votes: progress.voteCounters)
        if verdict.rejectedByVote {
            log(.info, "record rejected by the vote", ["question": "\(verdict.record.questionID)",
                                                       "confidence": "\(RunProgress.fixed(verdict.record.confidence))",
                                                       "majority": "\(verdict.record.hasMajority ? verdict.record.majority : "-")"])
        }
        wakeSender()
    }

    func wakeSender() {
        senderWake?.resume()
        senderWake = nil
    }

    /// One batch in flight at a time, in sequence order, each journaled before it goes
    /// (``RecordStream``). A failed call is retried (the trainer skips sequences it stored).
    func sendRecords() async {
        defer { senderStopped = true }
        var failures = 0
        while !Task.isCancelled {
            if outcome != nil { return }   // over: no new batches (a finished run has none left)
            if stream.waiting.isEmpty {
                checkFinished()
                await withCheckedContinuation { senderWake = $0 }
                continue
            }
            guard let trainer = actorSystem.receptionist.lookup(TrainerActor.key).first else {
                try? await Task.sleep(for: .milliseconds(100))
                continue
            }
            if trainer.id != trainerInSync {
                // A trainer seen for the first time (or restarted) says what it holds; the
                // stream resumes after its durable sequence number.
                do {
                    let receipt = try await ClusterSystem.withCallTimeout(config.network.callTimeout) { try await trainer.durableSequence() }
                    trainerInSync = trainer.id
                    log(.notice, "trainer in sync", ["trainer": "\(trainer.id.node)", "durable_sequence": "\(receipt.durableSequence)",
                                                     "records": "\(receipt.records)", "to_send": "\(stream.toSend(afterTrainerHolds: receipt.durableSequence))"])
                    acknowledge(receipt, sent: 0)
                } catch {
                    failures += 1
                    log(.warning, "trainer does not answer; will retry", ["error": "\(error)", "attempt": "\(failures)"])
                    try? await Task.sleep(for: .milliseconds(min(2000, 50 * failures)))
                }
                continue
            }
            guard let batch = stream.nextBatch(limit: config.coordinator.trainerBatch) else { continue }
            // Write-ahead: the trainer may store a record only once the journal holds it.
            if batch.needsJournalSync, !(await syncJournal()) {
                stream.batchEnded()
                return
            }
            do {
                let receipt = try await trainer.append(batch.wire)
                stream.batchEnded()
                failures = 0
                acknowledge(receipt, sent: batch.records.count)
            } catch {
                stream.batchEnded()
                failures += 1
                log(.warning, "trainer call failed; will resend", ["error": "\(error)", "records": "\(batch.records.count)", "attempt": "\(failures)"])
                try? await Task.sleep(for: .milliseconds(min(2000, 50 * failures)))
            }
        }
    }

    private func acknowledge(_ receipt: Selfimprove_V1_AppendReceipt, sent: Int) {
        let settled = stream.acknowledge(durableSequence: receipt.durableSequence, sent: sent)
        if let earlier = settled.regressedFrom {
            log(.error, "the trainer holds less than it acknowledged before (its output was replaced?); records up to the earlier acknowledgement are not sent again",
                ["trainer.durable_sequence": "\(receipt.durableSequence)", "acknowledged": "\(earlier)"])
        }
        if let next = settled.renumberedFrom {
            log(.warning, "the trainer holds sequence numbers the journal lacks; numbering continues after them",
                ["trainer.durable_sequence": "\(receipt.durableSequence)", "journal.next_sequence": "\(next)"])
        }
        progress.trainerExamples = receipt.examples
        for record in settled.stored { progress.stored(record) }
        if settled.advanced || !settled.stored.isEmpty {
            journal.acknowledged(stream.durable, stored: progress.storedCounters)
        }
        if settled.missing > 0 {
            log(.warning, "trainer did not store every record; resending the rest", ["sent": "\(sent)", "stored": "\(settled.stored.count)"])
        }
        refill()
        checkFinished()
    }

    /// After an interrupted or failed run: asks the trainer what it holds, in case an
    /// acknowledgement was lost, so the manifest counts what the files contain.
    func syncWithTrainer() async {
        guard let trainer = actorSystem.receptionist.lookup(TrainerActor.key).first else { return }
        if let receipt = try? await ClusterSystem.withCallTimeout(.seconds(2), { try await trainer.durableSequence() }) {
            acknowledge(receipt, sent: 0)
        }
    }

    /// Makes the journal durable (the fsync runs off the actor, so the samplers' calls go on).
    /// - Returns: false when the journal cannot be written: the run then fails, since going on
    ///   would break the promise that a restart loses nothing.
    private func syncJournal() async -> Bool {
        let through = stream.nextSequence - 1
        let descriptor: Int32
        do {
            descriptor = try journal.flushForSync()
        } catch {
            end(.failed("the journal cannot be written: \(error)"))
            return false
        }
        journalSyncing = true
        let synced = await Task.detached { fsync(descriptor) == 0 ? nil : String(cString: strerror(errno)) }.value
        journalSyncing = false
        if let synced {
            end(.failed("the journal cannot be synced (\(journal.url.path)): \(synced)"))
            return false
        }
        stream.journalSynced(through: through)
        return true
    }

    /// Rewrites the journal as the current state (bounded: open questions and unacknowledged
    /// records), durably.
    func compactJournal() {
        var snapshot = CoordinatorJournal.Snapshot()
        snapshot.feed = feed.position
        snapshot.nextSequence = stream.nextSequence
        snapshot.durableSequence = stream.durable
        snapshot.votes = progress.voteCounters
        snapshot.stored = progress.storedCounters
        snapshot.openQuestions = admitted.values.sorted { $0.serial < $1.serial }.map(\.question)
        snapshot.pendingRecords = stream.waiting
        do {
            try journal.compact(snapshot)
            stream.journalSynced()
            logger.debug("Journal compacted", metadata: ["bytes": "\(journal.growth)", "open": "\(snapshot.openQuestions.count)",
                                                        "pending": "\(snapshot.pendingRecords.count)"])
        } catch {
            end(.failed("\(error)"))
        }
    }
}
