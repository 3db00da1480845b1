// Preloaded (--import) into a service process by bench/capture.mjs: times every Error.captureStackTrace, the V8
// call a sampled event makes, and answers the times when the process receives 'captures'.
import process from 'node:process';

const capture = Error.captureStackTrace;
const times = [];
Error.captureStackTrace = function timedCapture(target, skip) {
  const t0 = process.hrtime.bigint();
  capture(target, skip ?? timedCapture);
  times.push(Number(process.hrtime.bigint() - t0));
};
process.on('message', (m) => {
  if (m === 'captures') process.send({ captures: times.splice(0) });
});
