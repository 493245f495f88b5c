import SelfImproveCore
import Wire

extension RefineCounts {
    /// As the journal stores one verifier's counts.
    var journal: Selfimprove_V1_JournalRefineCounts {
        var counts = Selfimprove_V1_JournalRefineCounts()
        counts.solutions = UInt64(solutions)
        counts.judgedWrong = UInt64(judgedWrong)
        counts.critiqued = UInt64(critiqued)
        counts.passedFilters = UInt64(passedFilters)
        counts.refinedRight = UInt64(refinedRight)
        counts.rebalanced = UInt64(rebalanced)
        counts.filtered = filtered.mapValues { UInt64($0) }
        return counts
    }

    init(journal: Selfimprove_V1_JournalRefineCounts) {
        self.init(solutions: Int(journal.solutions), judgedWrong: Int(journal.judgedWrong), critiqued: Int(journal.critiqued),
                  passedFilters: Int(journal.passedFilters), refinedRight: Int(journal.refinedRight), rebalanced: Int(journal.rebalanced),
                  filtered: journal.filtered.mapValues { Int($0) })
    }
}

/// The run's counters as the journal stores them, so a resumed coordinator reports the whole
/// run, not only the part since its restart.
extension RunProgress {
    /// Counters of sampling and voting.
    var voteCounters: Selfimprove_V1_JournalVoteCounters {
        var counters = Selfimprove_V1_JournalVoteCounters()
        counters.voted = UInt64(voted)
        counters.acceptedVotes = UInt64(acceptedVotes)
        counters.confidenceSum = confidenceSum
        counters.pathsReceived = UInt64(pathsReceived)
        counters.pathsDropped = UInt64(pathsDropped)
        counters.pathsGivenUp = UInt64(pathsGivenUp)
        counters.completionTokens = UInt64(completionTokens)
        counters.leasesGranted = UInt64(leasesGranted)
        counters.leasesExpired = UInt64(leasesExpired)
        counters.leasesFailed = UInt64(leasesFailed)
        counters.samplersLost = UInt64(samplersLost)
        counters.evaluated = UInt64(evaluation.questions)
        counters.labelled = UInt64(evaluation.labelled)
        counters.firstPathCorrect = UInt64(evaluation.firstPathCorrect)
        counters.majorityCorrect = UInt64(evaluation.majorityCorrect)
        counters.anyPathCorrect = UInt64(evaluation.anyPathCorrect)
        counters.bucketQuestions = evaluation.calibration.map { UInt64($0.questions) }
        counters.bucketMajorityCorrect = evaluation.calibration.map { UInt64($0.majorityCorrect) }
        counters.refine = refine.journal
        counters.verifyQuestions = UInt64(verifyRefine.questions)
        counters.verifyRefined = UInt64(verifyRefine.refined)
        counters.verifyLabelled = UInt64(verifyRefine.labelled)
        counters.verifyRightBefore = UInt64(verifyRefine.rightBefore)
        counters.verifyRightAfter = UInt64(verifyRefine.rightAfter)
        counters.verifyRightToWrong = UInt64(verifyRefine.rightToWrong)
        counters.verifyWrongToRight = UInt64(verifyRefine.wrongToRight)
        counters.refineByVerifier = refineByVerifier.mapValues(\.journal)
        counters.search = search.journal
        return counters
    }

    /// Counters of what the trainer acknowledged.
    var storedCounters: Selfimprove_V1_JournalStoredCounters {
        var counters = Selfimprove_V1_JournalStoredCounters()
        counters.records = UInt64(done)
        counters.accepted = UInt64(accepted)
        counters.paths = UInt64(pathsStored)
        counters.examples = trainerExamples
        return counters
    }

    /// Takes the counters of a journal back.
    mutating func restore(votes: Selfimprove_V1_JournalVoteCounters, stored: Selfimprove_V1_JournalStoredCounters) {
        voted = Int(votes.voted)
        acceptedVotes = Int(votes.acceptedVotes)
        confidenceSum = votes.confidenceSum
        pathsReceived = Int(votes.pathsReceived)
        pathsDropped = Int(votes.pathsDropped)
        pathsGivenUp = Int(votes.pathsGivenUp)
        completionTokens = Int(votes.completionTokens)
        leasesGranted = Int(votes.leasesGranted)
        leasesExpired = Int(votes.leasesExpired)
        leasesFailed = Int(votes.leasesFailed)
        samplersLost = Int(votes.samplersLost)
        evaluation.questions = Int(votes.evaluated)
        evaluation.labelled = Int(votes.labelled)
        evaluation.firstPathCorrect = Int(votes.firstPathCorrect)
        evaluation.majorityCorrect = Int(votes.majorityCorrect)
        evaluation.anyPathCorrect = Int(votes.anyPathCorrect)
        if votes.bucketQuestions.count == evaluation.calibration.count, votes.bucketMajorityCorrect.count == evaluation.calibration.count {
            for index in evaluation.calibration.indices {
                evaluation.calibration[index].questions = Int(votes.bucketQuestions[index])
                evaluation.calibration[index].majorityCorrect = Int(votes.bucketMajorityCorrect[index])
            }
        }
        refine = RefineCounts(journal: votes.refine)
        verifyRefine = VerifyRefineCounts(questions: Int(votes.verifyQuestions), refined: Int(votes.verifyRefined),
                                          labelled: Int(votes.verifyLabelled), rightBefore: Int(votes.verifyRightBefore),
                                          rightAfter: Int(votes.verifyRightAfter), rightToWrong: Int(votes.verifyRightToWrong),
                                          wrongToRight: Int(votes.verifyWrongToRight))
        refineByVerifier = votes.refineByVerifier.mapValues(RefineCounts.init(journal:))
        search = SearchCounts(journal: votes.search)
        done = Int(stored.records)
        accepted = Int(stored.accepted)
        pathsStored = Int(stored.paths)
        trainerExamples = stored.examples
    }
}
