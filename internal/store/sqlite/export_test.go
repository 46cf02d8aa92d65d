package sqlite

// PollBatch is pollBatch, for the tests of a burst.
const PollBatch = pollBatch
