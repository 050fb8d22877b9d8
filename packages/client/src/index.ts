export { DEFAULT_TOLERANCE_SECONDS, type VerifySignatureOptions, verifySignature } from './signature.ts';
