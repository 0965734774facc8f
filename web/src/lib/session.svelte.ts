import { graphql, request, type ResultOf } from './graphql.js';

const ME = graphql(`
  query Me {
    me { id email nickname usedBytes quotaBytes }
  }
`);

export type Me = NonNullable<ResultOf<typeof ME>['me']>;

/** Who is signed in in this browser (the session cookie), once asked. */
export const session = $state<{ checked: boolean; me: Me | null }>({ checked: false, me: null });

export async function refreshSession(): Promise<void> {
  try {
    session.me = (await request(ME, {})).me;
  } catch {
    session.me = null;
  }
  session.checked = true;
}
