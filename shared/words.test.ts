import { counted } from './words';

describe('counted', () => {
  it('says one thing in the singular, and none or many in the plural', () => {
    expect(counted(1, 'message')).toBe('1 message');
    expect(counted(0, 'message')).toBe('0 messages');
    expect(counted(2, 'post')).toBe('2 posts');
    expect(counted(3, 'delivery', 'deliveries')).toBe('3 deliveries');
  });
});
