import { graphql } from '../lib/graphql.js';

export const CHECK = graphql(`
  mutation Check($files: [CheckFileInput!]!) {
    checkUploads(files: $files) {
      sha256
      status
      assetId
      challenge { id nonce ranges { offset length } }
      upload { id missing { offset length } limits { minChunkBytes maxChunkBytes } }
      error { code message }
    }
  }
`);

export const CLAIM = graphql(`
  mutation Claim($challengeId: ID!, $proof: String!) {
    claimUpload(challengeId: $challengeId, proof: $proof) { id }
  }
`);

export const START = graphql(`
  mutation Start($file: CheckFileInput!) {
    startUpload(file: $file) { id missing { offset length } limits { minChunkBytes maxChunkBytes } }
  }
`);

export const MISSING = graphql(`
  query Missing($id: ID!) {
    upload(id: $id) { id state missing { offset length } limits { minChunkBytes maxChunkBytes } asset { id } }
  }
`);
