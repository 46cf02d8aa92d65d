// Assertions on what matrix-js-sdk returns.
import assert from "node:assert/strict";

import { MatrixError } from "./sdk.mjs";

// assertMatrixError checks that err is a MatrixError of the given HTTP
// status and errcode, with the error body's fields, and returns it.
export function assertMatrixError(err, httpStatus, errcode) {
    assert.ok(err instanceof MatrixError, `expected a MatrixError, got ${err?.name}: ${err?.message}`);
    assert.equal(err.httpStatus, httpStatus, err.message);
    assert.equal(err.errcode, errcode, err.message);
    assert.equal(err.data.errcode, errcode);
    assert.equal(typeof err.data.error, "string");
    assert.notEqual(err.data.error, "");
    return err;
}

// rejectsWith awaits a promise that must fail with a MatrixError of the
// given HTTP status and errcode, and returns the error.
export async function rejectsWith(promise, httpStatus, errcode) {
    const err = await promise.then(
        (res) => assert.fail(`expected ${httpStatus} ${errcode}, got success: ${JSON.stringify(res)}`),
        (e) => e,
    );
    return assertMatrixError(err, httpStatus, errcode);
}
